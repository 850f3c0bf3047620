/**
 * Model folders picked with the File System Access API and kept (their directory handles, in the
 * engine's storage), so a folder picked once opens again after a reload without picking it again.
 * Read permission is asked again on each use: a stored handle grants nothing by itself. Browsers
 * without the API (Firefox, Safari) get a line saying so; the folder picker above still works there.
 * Files are read from the folder lazily (File objects), so nothing is loaded before the engine asks.
 */
import type { RememberedFolder } from '../../app/api';
import type { App } from '../app';
import { el, errorMessage } from '../dom';
import type { PickedFile } from './ollama-store';

/** The parts of the File System Access API used here, which TypeScript's DOM types lack. */
interface PermissionHandle {
  queryPermission(options: { mode: 'read' }): Promise<PermissionState>;
  requestPermission(options: { mode: 'read' }): Promise<PermissionState>;
  values(): AsyncIterable<FileSystemDirectoryHandle | FileSystemFileHandle>;
}
type DirectoryPicker = (options: { id?: string; mode?: 'read' }) => Promise<FileSystemDirectoryHandle>;

const picker = (): DirectoryPicker | null =>
  typeof (globalThis as { showDirectoryPicker?: unknown }).showDirectoryPicker === 'function'
    ? (globalThis as unknown as { showDirectoryPicker: DirectoryPicker }).showDirectoryPicker
    : null;

/** Every file under the folder, as `<folder>/<path>` like a folder picker's webkitRelativePath; hidden entries (.git) skipped. */
async function folderFiles(root: FileSystemDirectoryHandle): Promise<PickedFile[]> {
  const out: PickedFile[] = [];
  const walk = async (dir: FileSystemDirectoryHandle, prefix: string): Promise<void> => {
    for await (const entry of (dir as unknown as PermissionHandle).values()) {
      if (entry.name.startsWith('.')) continue;
      if (entry.kind === 'file') out.push({ path: `${prefix}${entry.name}`, file: await (entry as FileSystemFileHandle).getFile() });
      else await walk(entry as FileSystemDirectoryHandle, `${prefix}${entry.name}/`);
    }
  };
  await walk(root, `${root.name}/`);
  return out;
}

export class RememberedFolders {
  readonly element: HTMLElement;
  private readonly list = el('ul', { class: 'remembered-folders', 'data-testid': 'remembered-folders' });
  private readonly buttons: HTMLButtonElement[] = [];
  private disabled = false;

  constructor(
    private readonly app: App,
    private readonly open: (files: PickedFile[]) => Promise<void>,
    private readonly fail: (message: string) => void,
  ) {
    const choose = picker();
    if (!choose) {
      this.element = el(
        'p',
        { class: 'hint', 'data-testid': 'remember-unsupported' },
        'This browser cannot keep a picked folder between visits (it lacks the File System Access API, as Firefox and Safari do): ' +
          'choose the folder again after a reload.',
      );
      return;
    }
    const pick = el(
      'button',
      { type: 'button', class: 'secondary', 'data-testid': 'remember-pick', onclick: () => void this.pickAndRemember(choose) },
      'Choose a folder and remember it',
    );
    this.buttons.push(pick);
    this.element = el('div', { class: 'remembered' }, pick, this.list);
    void this.refresh();
  }

  setDisabled(disabled: boolean): void {
    this.disabled = disabled;
    for (const button of this.buttons) button.disabled = disabled;
  }

  private async pickAndRemember(choose: DirectoryPicker): Promise<void> {
    let handle: FileSystemDirectoryHandle;
    try {
      handle = await choose({ id: 'webtune-model', mode: 'read' });
    } catch (error) {
      if ((error as Error).name !== 'AbortError') this.fail(`Could not open the folder: ${errorMessage(error)}`);
      return;
    }
    try {
      await this.app.engine.rememberFolder(handle);
      await this.refresh();
      await this.open(await folderFiles(handle));
    } catch (error) {
      this.fail(`Could not read the folder ${handle.name}: ${errorMessage(error)}`);
    }
  }

  /** Asks for read permission again (the click is the user gesture a prompt needs), then opens the folder. */
  private async reopen(folder: RememberedFolder): Promise<void> {
    try {
      const handle = folder.handle as unknown as PermissionHandle;
      let state = await handle.queryPermission({ mode: 'read' });
      if (state !== 'granted') state = await handle.requestPermission({ mode: 'read' });
      if (state !== 'granted') {
        this.fail(`webtune may not read ${folder.name} (permission ${state}); press Open again and allow it, or choose the folder anew.`);
        return;
      }
      await this.open(await folderFiles(folder.handle));
    } catch (error) {
      // A moved or deleted folder: its handle no longer resolves.
      this.fail(`Could not open ${folder.name} again (${errorMessage(error)}); choose the folder anew.`);
    }
  }

  private async refresh(): Promise<void> {
    const folders = await this.app.engine.rememberedFolders();
    this.buttons.length = 1;
    this.list.replaceChildren(
      ...folders.map((folder) => {
        const openButton = el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'remembered-open', onclick: () => void this.reopen(folder) },
          'Open',
        );
        const forget = el(
          'button',
          {
            type: 'button',
            class: 'secondary',
            onclick: async () => {
              await this.app.engine.forgetFolder(folder.name);
              await this.refresh();
            },
          },
          'Forget',
        );
        this.buttons.push(openButton, forget);
        openButton.disabled = forget.disabled = this.disabled;
        return el('li', { 'data-testid': 'remembered-folder' }, el('span', {}, folder.name), openButton, forget);
      }),
    );
  }
}
