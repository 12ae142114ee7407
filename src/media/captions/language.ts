// Language tags: BCP 47 (RFC 5646), canonicalised by ECMA-402 Intl (Unicode BCP 47 locale identifiers, UTS #35),
// which also maps ISO 639-2 three-letter codes, the kind ffprobe reports, to their two-letter forms.
import { SmoothcastError } from '../../core/errors.ts';

const UNDETERMINED = 'und';
/** RFC 5646 §4.4.1: implementations must handle tags of at least 35 characters; longer ones are no real language. */
const MAX_TAG_LENGTH = 35;
const EXAMPLES = 'use a BCP 47 tag such as en, fr-CA, pt-BR';

const names = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'none' });

/** Lenient, for tags found in media files: whatever cannot be read as a known language is 'und' (RFC 5646 §4.1). */
export function normalizeLanguage(tag: string | null | undefined): string {
  if (tag === null || tag === undefined) return UNDETERMINED;
  // Underscores ('en_US') are common outside BCP 47 (POSIX locales, Android).
  const canonical = canonicalize(tag.trim().replaceAll('_', '-'));
  return canonical === undefined || !isKnownPrimary(canonical) ? UNDETERMINED : canonical;
}

/** Strict, for user input: a well-formed tag with a known primary language, or LANGUAGE_INVALID. */
export function parseLanguageTag(tag: string): string {
  const trimmed = tag.trim();
  if (trimmed === '') throw new SmoothcastError('LANGUAGE_INVALID', `empty language tag: ${EXAMPLES}`);
  const canonical = trimmed.length <= MAX_TAG_LENGTH ? canonicalize(trimmed) : undefined;
  if (canonical === undefined || !isKnownPrimary(canonical)) {
    const shown = trimmed.length > 40 ? `${trimmed.slice(0, 40)}…` : trimmed;
    throw new SmoothcastError('LANGUAGE_INVALID', `unknown language tag ${JSON.stringify(shown)}: ${EXAMPLES}`);
  }
  return canonical;
}

/** The English name of a tag's language ('fr-CA' → 'Canadian French'); 'Unknown language' when there is none. */
export function languageLabel(tag: string): string {
  const canonical = normalizeLanguage(tag);
  const primary = primaryOf(canonical);
  if (primary === UNDETERMINED) return 'Unknown language';
  // Intl.DisplayNames refuses tags with extensions ('-u-…', '-x-…'): name the part before the first singleton.
  const subtags = canonical.split('-');
  const singleton = subtags.findIndex((s) => s.length === 1);
  const base = (singleton < 0 ? subtags : subtags.slice(0, singleton)).join('-');
  try {
    return names.of(base) ?? names.of(primary) ?? canonical;
  } catch {
    return canonical;
  }
}

function canonicalize(tag: string): string | undefined {
  if (tag === '') return undefined;
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    // RangeError: not well-formed (including RFC 5646 grandfathered tags such as 'i-klingon', which UTS #35 drops).
    return undefined;
  }
}

function primaryOf(canonical: string): string {
  const dash = canonical.indexOf('-');
  return dash < 0 ? canonical : canonical.slice(0, dash);
}

/**
 * A primary language subtag that names a language: one Intl knows, or one of the special ISO 639-2 codes, 'und'
 * (undetermined), 'mul' (multiple), 'zxx' (no linguistic content) and the private-use range 'qaa'–'qtz'
 * (RFC 5646 §2.2.1).
 */
function isKnownPrimary(canonical: string): boolean {
  const primary = primaryOf(canonical);
  if (primary === UNDETERMINED || primary === 'mul' || primary === 'zxx') return true;
  if (primary.length === 3 && primary >= 'qaa' && primary <= 'qtz') return true;
  try {
    return names.of(primary) !== undefined;
  } catch {
    return false;
  }
}
