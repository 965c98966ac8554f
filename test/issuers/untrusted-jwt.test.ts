/** The duplicate-member scan every token's header and payload go through before anything trusts them. */
import { describe, expect, it } from 'vitest';
import { repeatsMemberName } from '../../src/issuers/untrusted-jwt.js';

describe('repeatsMemberName', () => {
  it.each([
    ['one name twice', '{"a":1,"a":2}'],
    ['twice after other members', '{"a":1,"b":"x","c":[1,2],"a":3}'],
    ['twice in a nested object', '{"a":{"b":1,"b":2}}'],
    ['twice in an object inside an array', '{"a":[{"x":1},{"y":1,"y":2}]}'],
    ['through a unicode escape', '{"ref":1,"r\\u0065f":2}'],
    ['through an escaped quote in the name', '{"a\\"b":1,"a\\u0022b":2}'],
    ['after a value holding braces, quotes and commas', '{"a":"{\\"a\\":1,}","b":1,"a":2}'],
  ])('finds %s', (_name, json) => {
    JSON.parse(json);
    expect(repeatsMemberName(json)).toBe(true);
  });

  it.each([
    ['distinct names', '{"a":1,"b":2}'],
    ['the same name in sibling and nested objects', '{"a":{"a":1},"b":{"a":2},"c":[{"a":1},{"a":2}]}'],
    ['a value equal to a name', '{"a":"a","b":["a","a"]}'],
    ['names that differ only by escapes resolving differently', '{"a\\\\":1,"a":2}'],
    ['an empty object and an empty array', '{"a":{},"b":[],"c":[[],{}]}'],
    ['whitespace between tokens', '{ "a" : 1 ,\n "b" : [ 1 , { "a" : 2 } ] }'],
  ])('accepts %s', (_name, json) => {
    JSON.parse(json);
    expect(repeatsMemberName(json)).toBe(false);
  });
});
