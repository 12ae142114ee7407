// codem-isoboxer, the box parser dash.js uses (a dependency of the dashjs devDependency, untyped), for tests that
// read our boxes with a reader we did not write. Loaded through require, typed with the little of its API used.
import { createRequire } from 'node:module';

export interface IsoBox {
  type: string;
  size: number;
  version?: number;
  flags?: number;
  usertype?: number[];
  boxes?: IsoBox[];
  [field: string]: unknown;
}

export interface IsoFile {
  boxes: IsoBox[];
  fetch(type: string): IsoBox | null;
  fetchAll(type: string): IsoBox[];
}

export const ISOBoxer = createRequire(import.meta.url)('codem-isoboxer') as {
  parseBuffer(b: ArrayBuffer): IsoFile;
  // biome-ignore lint/suspicious/noExplicitAny: box processors get codem-isoboxer's own `this`
  addBoxProcessor(type: string, f: (this: any) => void): void;
};

export const iso = (bytes: Uint8Array): IsoFile => ISOBoxer.parseBuffer(bytes.slice().buffer);
