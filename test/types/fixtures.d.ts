// haraka-test-fixtures ships no types; tests use it loosely.
declare module 'haraka-test-fixtures'
