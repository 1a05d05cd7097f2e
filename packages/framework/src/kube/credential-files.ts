/**
 * Credential files the API client re-reads when they change: the bearer token file (the kubelet rotates the projected
 * service-account token), and the CA bundle, client certificate and client key named by path in a kubeconfig or
 * mounted in-cluster (a CA rotation rewrites `ca.crt`, cert-manager or a node agent renews the client certificate).
 *
 * A change is noticed by modification time and size (cheap: one `stat`); a forced check reads the content anyway,
 * since a file rewritten within the file system's timestamp granularity can keep both.
 */
import { readFile, stat } from 'node:fs/promises';

/** One watched file and the content last read from it. */
export class WatchedFile {
  private mtimeMs: number | undefined;
  private size: number | undefined;
  private text: string | undefined;

  constructor(readonly path: string) {}

  /** The content last read (trailing whitespace kept), or undefined before the first successful read. */
  get content(): string | undefined {
    return this.text;
  }

  /**
   * Re-reads the file when its stamp changed, or always when `force`. Resolves true when the content differs from
   * the previous read. A file that cannot be read keeps its previous content: a rotation in progress (file briefly
   * missing) must not take the credentials away.
   *
   * @throws never; `onError` hears about unreadable files.
   */
  async refresh(force: boolean, onError?: (err: unknown) => void): Promise<boolean> {
    try {
      const info = await stat(this.path);
      if (!force && info.mtimeMs === this.mtimeMs && info.size === this.size && this.text !== undefined) return false;
      const text = await readFile(this.path, 'utf8');
      this.mtimeMs = info.mtimeMs;
      this.size = info.size;
      const changed = text !== this.text;
      this.text = text;
      return changed;
    } catch (err) {
      onError?.(err);
      return false;
    }
  }
}

/** Which credential a watched file holds. */
export type CredentialFileKind = 'token' | 'ca' | 'cert' | 'key';

/** The credential files of one connection. */
export class CredentialFiles {
  private readonly files = new Map<CredentialFileKind, WatchedFile>();

  constructor(paths: Partial<Record<CredentialFileKind, string>>) {
    for (const [kind, path] of Object.entries(paths) as [CredentialFileKind, string | undefined][]) {
      if (path) this.files.set(kind, new WatchedFile(path));
    }
  }

  /** Whether any file is watched. */
  get empty(): boolean {
    return this.files.size === 0;
  }

  /** The content last read from the file holding `kind`, if it is watched and was read. */
  content(kind: CredentialFileKind): string | undefined {
    return this.files.get(kind)?.content;
  }

  /**
   * Checks every file (see {@link WatchedFile.refresh}); resolves with the kinds whose content changed.
   */
  async refresh(
    force: boolean,
    onError?: (kind: CredentialFileKind, path: string, err: unknown) => void,
  ): Promise<Set<CredentialFileKind>> {
    const changed = new Set<CredentialFileKind>();
    await Promise.all(
      [...this.files].map(async ([kind, file]) => {
        if (await file.refresh(force, (err) => onError?.(kind, file.path, err))) changed.add(kind);
      }),
    );
    return changed;
  }
}
