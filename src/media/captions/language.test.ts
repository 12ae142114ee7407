import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { languageLabel, normalizeLanguage, parseLanguageTag } from './index.ts';
import { assertSmoothcastError } from './testing.ts';

describe('normalizeLanguage (lenient, for media files)', () => {
  it('maps ISO 639-2/T and /B codes to BCP 47', () => {
    assert.equal(normalizeLanguage('eng'), 'en');
    assert.equal(normalizeLanguage('fre'), 'fr');
    assert.equal(normalizeLanguage('fra'), 'fr');
    assert.equal(normalizeLanguage('ger'), 'de');
    assert.equal(normalizeLanguage('dut'), 'nl');
    assert.equal(normalizeLanguage('fil'), 'fil', 'no two-letter code: stays three letters');
  });

  it('canonicalises case and deprecated subtags', () => {
    assert.equal(normalizeLanguage('en-us'), 'en-US');
    assert.equal(normalizeLanguage('EN'), 'en');
    assert.equal(normalizeLanguage('zh-hant-tw'), 'zh-Hant-TW');
    assert.equal(normalizeLanguage('iw'), 'he');
    assert.equal(normalizeLanguage(' pt_BR '), 'pt-BR');
  });

  it("is 'und' for missing, unknown or unreadable tags", () => {
    for (const tag of [undefined, null, '', '  ', 'und', 'xx', 'xyz', 'i-klingon', 'not a tag', 'x-private', '12']) {
      assert.equal(normalizeLanguage(tag), 'und', String(tag));
    }
    assert.equal(normalizeLanguage('mul'), 'mul');
    assert.equal(normalizeLanguage('zxx'), 'zxx');
    assert.equal(normalizeLanguage('qaa'), 'qaa');
  });
});

describe('parseLanguageTag (strict, for user input)', () => {
  it('returns canonical tags', () => {
    assert.equal(parseLanguageTag(' en-us '), 'en-US');
    assert.equal(parseLanguageTag('fr-CA'), 'fr-CA');
    assert.equal(parseLanguageTag('pt-BR'), 'pt-BR');
    assert.equal(parseLanguageTag('es-419'), 'es-419');
    assert.equal(parseLanguageTag('eng'), 'en');
    assert.equal(parseLanguageTag('und'), 'und');
    assert.equal(parseLanguageTag('qaa'), 'qaa');
    assert.equal(parseLanguageTag('qtz'), 'qtz');
    assert.equal(parseLanguageTag('tlh'), 'tlh');
  });

  it('throws LANGUAGE_INVALID for unknown, malformed and overlong tags', () => {
    assertSmoothcastError(
      () => parseLanguageTag('xx'),
      'LANGUAGE_INVALID',
      /^unknown language tag "xx": use a BCP 47 tag such as en, fr-CA, pt-BR$/,
    );
    for (const tag of ['i-klingon', 'qua', 'en_US', 'en--US', 'x-private', '', '1234', 'english']) {
      assertSmoothcastError(() => parseLanguageTag(tag), 'LANGUAGE_INVALID', undefined, tag);
    }
    const long = 'en-Latn-US-aaaaaaaa-bbbbbbbb-cccccccc'; // well-formed, 37 characters
    assert.equal(Intl.getCanonicalLocales(long).length, 1);
    assertSmoothcastError(() => parseLanguageTag(long), 'LANGUAGE_INVALID');
    assertSmoothcastError(
      () => parseLanguageTag('y'.repeat(10_000)),
      'LANGUAGE_INVALID',
      /^unknown language tag "y{40}…"/,
    );
  });
});

describe('languageLabel', () => {
  it('names the language in English', () => {
    assert.equal(languageLabel('en'), 'English');
    assert.equal(languageLabel('fr-CA'), 'Canadian French');
    assert.equal(languageLabel('pt-BR'), 'Brazilian Portuguese');
    assert.equal(languageLabel('ger'), 'German');
    assert.equal(languageLabel('en-US-u-va-posix'), 'American English');
    assert.equal(languageLabel('en-x-private'), 'English');
    assert.equal(languageLabel('en-XX'), 'English');
  });

  it("is 'Unknown language' for und and what cannot be read, and never throws", () => {
    for (const tag of ['und', '', 'xx', 'i-klingon', '\u0000', 'a'.repeat(1000)]) {
      assert.equal(languageLabel(tag), 'Unknown language', tag);
    }
    assert.equal(languageLabel('mul'), 'Multiple languages');
    assert.equal(languageLabel('qaa'), 'qaa');
  });
});
