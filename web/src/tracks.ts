// The watch page's captions and audio-language menus over Shaka's text and audio tracks. The viewer's choice is
// remembered per browser (localStorage) and re-applied on the next visit when a track of the same language exists
// (the same label preferred), so a French viewer gets French audio and captions on every video that has them.
import type shaka from 'shaka-player/dist/shaka-player.compiled.js';
import { el } from './api.ts';

type TextTrack = shaka.extern.TextTrack;
type AudioTrack = shaka.extern.AudioTrack;

export const CAPTIONS_KEY = 'smoothcast.captions';
export const AUDIO_KEY = 'smoothcast.audioLanguage';

/** What is stored: enough to find "the same" track in another asset, whose track ids differ. */
interface Choice {
  language: string;
  label: string | null;
  role?: string;
}

const names = new Intl.DisplayNames(['en'], { type: 'language' });

/** 'fr' → 'French'; BCP 47 tags (RFC 5646) Shaka has already normalised from ISO 639-2 ('fre' → 'fr'). */
export function languageName(tag: string | null | undefined): string {
  if (!tag || tag === 'und') return 'Unknown language';
  try {
    return names.of(tag) ?? tag;
  } catch {
    return tag; // not a well-formed tag: show it as it is
  }
}

// localStorage throws in some sandboxed iframes (the embed) and when storage is disabled: then nothing is remembered.
function load(key: string): Choice | 'off' | null {
  try {
    const raw = localStorage.getItem(key);
    if (raw === null) return null;
    if (raw === 'off') return 'off';
    const v = JSON.parse(raw) as Partial<Choice> | null;
    return v && typeof v.language === 'string' ? { language: v.language, label: v.label ?? null, role: v.role } : null;
  } catch {
    return null;
  }
}

function save(key: string, value: Choice | 'off'): void {
  try {
    localStorage.setItem(key, value === 'off' ? 'off' : JSON.stringify(value));
  } catch {
    // storage unavailable: the choice lasts for this page only
  }
}

const primary = (tag: string) => tag.toLowerCase().split('-')[0] ?? '';

/** The track most like `want`: same language required (primary subtag), then same label, then same role. */
function best<T extends { language: string; label: string | null }>(
  tracks: readonly T[],
  want: Choice,
  role: (t: T) => string = () => '',
): T | undefined {
  const same = tracks.filter((t) => primary(t.language) === primary(want.language));
  const score = (t: T) =>
    (t.label === want.label ? 4 : 0) +
    (t.language.toLowerCase() === want.language.toLowerCase() ? 2 : 0) +
    (want.role !== undefined && role(t) === want.role ? 1 : 0);
  return same.sort((a, b) => score(b) - score(a))[0];
}

export interface CaptionsMenu {
  /** The select with its icon; hidden while there is nothing to choose. */
  control: HTMLElement;
  select: HTMLSelectElement;
  /** Applies the remembered choice (after `load()`); call once. */
  init(): void;
  /** Turns captions off, or on with the last chosen track (else the first): the `c` key. */
  toggle(): void;
}

/** A select with an icon before it (two menus both reading "English" need telling apart at a glance). */
function menuControl(select: HTMLSelectElement, adorn: Node): HTMLElement {
  return el('label', { class: 'menu', hidden: '' }, adorn, select);
}

export function captionsMenu(player: shaka.Player, adorn: Node): CaptionsMenu {
  const select = el('select', { class: 'captions', 'aria-label': 'Captions' }, el('option', { value: 'off', text: 'Off' }));
  const control = menuControl(select, adorn);
  let shown: TextTrack | null = null;
  const stored = load(CAPTIONS_KEY);
  let last: Choice | null = stored === 'off' ? null : stored;
  // Until the viewer picks something here, a remembered track that appears later (HLS while encoding) is applied.
  let settled = stored === null || stored === 'off';

  const tracks = () => player.getTextTracks();
  const choiceOf = (t: TextTrack): Choice => ({ language: t.language, label: t.label });
  const show = (t: TextTrack | null, remember: boolean) => {
    // Shaka 5: selecting a track makes text visible; null unloads the text stream and hides it.
    player.selectTextTrack(t);
    shown = t;
    if (t) last = choiceOf(t);
    if (remember) {
      save(CAPTIONS_KEY, t ? choiceOf(t) : 'off');
      settled = true;
    }
    select.value = t ? String(t.id) : 'off';
  };
  const draw = () => {
    const list = tracks();
    const base = (t: TextTrack) => t.label || languageName(t.language);
    const counts = new Map<string, number>();
    for (const t of list) counts.set(base(t), (counts.get(base(t)) ?? 0) + 1);
    // Two tracks of one name (subtitles and SDH captions in one language) are told apart by their kind.
    const name = (t: TextTrack) =>
      (counts.get(base(t)) ?? 0) > 1 && t.kind === 'caption' ? `${base(t)} (CC)` : base(t);
    select.replaceChildren(
      el('option', { value: 'off', text: 'Off' }),
      ...list.map((t) => el('option', { value: String(t.id), text: name(t), lang: t.language })),
    );
    control.hidden = list.length === 0;
    if (shown) shown = list.find((t) => t.id === shown?.id) ?? null;
    if (!settled && last && !shown) {
      const t = best(list, last);
      if (t) show(t, false);
    }
    select.value = shown ? String(shown.id) : 'off';
  };
  select.addEventListener('change', () => {
    show(tracks().find((t) => String(t.id) === select.value) ?? null, true);
  });
  // Tracks change while loading too: selecting one then would race load(), so only after init().
  let loaded = false;
  player.addEventListener('trackschanged', () => loaded && draw());
  return {
    control,
    select,
    init() {
      loaded = true;
      draw();
    },
    toggle() {
      if (shown) return show(null, true);
      const list = tracks();
      const t = (last && best(list, last)) || list[0];
      if (t) show(t, true);
    },
  };
}

const audioKey = (t: AudioTrack) => `${t.language}|${t.label ?? ''}|${t.roles.join(',')}`;
const audioRole = (t: AudioTrack) => t.roles.find((r) => r !== 'main') ?? '';
const ROLE_NAMES: Record<string, string> = { description: 'audio description', alternate: 'alternative' };

/**
 * 'French', 'English — commentary'. The role (DASH ISO/IEC 23009-1 §5.8.5.5) is said when it describes the content;
 * 'alternate' only marks a track as not the default one (a dub in another language), so it is said only when the
 * name alone would not tell two tracks apart.
 */
function audioNames(tracks: readonly AudioTrack[]): Map<AudioTrack, string> {
  const base = (t: AudioTrack) => t.label || languageName(t.language);
  const count = (name: string) => tracks.filter((t) => base(t) === name).length;
  const names = new Map<AudioTrack, string>();
  for (const t of tracks) {
    const role = audioRole(t);
    const say = role && (role !== 'alternate' || count(base(t)) > 1);
    names.set(t, say ? `${base(t)} — ${ROLE_NAMES[role] ?? role}` : base(t));
  }
  return names;
}

export interface AudioMenu {
  control: HTMLElement;
  select: HTMLSelectElement;
  /** Before `load()`: tells Shaka which audio to start with, so the remembered language is the first one fetched. */
  prefer(): void;
  /** After `load()`: fills the menu and switches to the remembered track if Shaka started with another. */
  init(): void;
}

export function audioMenu(player: shaka.Player, adorn: Node): AudioMenu {
  const select = el('select', { class: 'audio-language', 'aria-label': 'Audio' });
  const control = menuControl(select, adorn);
  const stored = load(AUDIO_KEY);
  const want = stored === 'off' ? null : stored;
  let list: AudioTrack[] = [];

  const tracks = () => {
    // One entry per language/label/role: several bitrates of one language are Shaka's to choose between (ABR).
    const byKey = new Map<string, AudioTrack>();
    for (const t of player.getAudioTracks()) {
      const seen = byKey.get(audioKey(t));
      if (!seen || t.active) byKey.set(audioKey(t), t);
    }
    return [...byKey.values()];
  };
  const sync = () => {
    const active = player.getAudioTracks().find((t) => t.active);
    if (active) select.value = audioKey(active);
  };
  const draw = () => {
    list = tracks();
    const names = audioNames(list);
    select.replaceChildren(
      ...list.map((t) => el('option', { value: audioKey(t), text: names.get(t) ?? t.language, lang: t.language })),
    );
    control.hidden = list.length < 2;
    sync();
  };
  select.addEventListener('change', () => {
    const t = list.find((x) => audioKey(x) === select.value);
    if (!t) return;
    // Keep 2 s of the current language buffered: playback carries on while the new one is fetched, instead of
    // stalling on an emptied buffer (Shaka's advice: about two segments).
    player.selectAudioTrack(t, 2);
    save(AUDIO_KEY, { language: t.language, label: t.label, role: audioRole(t) });
  });
  player.addEventListener('trackschanged', draw);
  player.addEventListener('variantchanged', sync);
  player.addEventListener('adaptation', sync);
  return {
    control,
    select,
    prefer() {
      if (!want) return;
      // Each preference must match whole or is skipped: the exact one first, then looser ones of the same language.
      const { language } = want;
      const role = want.role ?? '';
      const preferredAudio = [{ language, role, label: want.label ?? '' }, { language, role }, { language }];
      player.configure({ preferredAudio });
    },
    init() {
      draw();
      if (!want) return;
      const t = best(list, want, audioRole);
      if (t && !t.active) player.selectAudioTrack(t);
      sync();
    },
  };
}
