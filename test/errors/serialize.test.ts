/**
 * XML text as the STS answers carry it: the five special characters escaped, characters XML 1.0 cannot
 * carry dropped, and everything else (keys, tokens, ids: the common case, which takes a fast path) as is.
 */
import { describe, expect, it } from 'vitest';
import { escapeXml, xmlElement } from '../../src/errors/serialize.js';

describe('escapeXml', () => {
  it.each([
    ['ASIAABCDEFGHIJKLMNOP', 'ASIAABCDEFGHIJKLMNOP'],
    ['eyJhbGciOiJFUzI1NiJ9.e30.sig-_', 'eyJhbGciOiJFUzI1NiJ9.e30.sig-_'],
    ['a&b<c>d"e\'f', 'a&amp;b&lt;c&gt;d&quot;e&apos;f'],
    ['tab\tnewline\ncr\r kept', 'tab\tnewline\ncr\r kept'],
    ['nul\u0000 bell\u0007 esc\u001b gone\uffff', 'nul bell esc gone'],
    ['ünïcödé ✓', 'ünïcödé ✓'],
    ['<\u0001&', '&lt;&amp;'],
    ['', ''],
  ])('%j -> %j', (input, expected) => {
    expect(escapeXml(input)).toBe(expected);
  });

  it('writes an element with its text escaped', () => {
    expect(xmlElement('RoleSessionName', '<x & y>')).toBe('<RoleSessionName>&lt;x &amp; y&gt;</RoleSessionName>');
  });
});
