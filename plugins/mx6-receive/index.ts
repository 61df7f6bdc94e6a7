// placeholder: replaced by the real plugin glue
export function register(this: unknown): void {}
