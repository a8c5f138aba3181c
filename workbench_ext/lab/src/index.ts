/**
 * The Workbench side panel.
 *
 * All panel logic lives in Python (ipywidgets): this extension only adds a
 * left-sidebar widget hosting a same-origin iframe of the Voila page that the
 * `workbench_ext` server extension serves at `<base_url>workbench/panel`.
 *
 * The page is requested when the panel is first shown, or, when the saved layout
 * will show it, as soon as the plugin activates: JupyterLab restores the sidebar about
 * a second after its splash is gone, time the server can spend rendering the panel.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { IStateDB } from '@jupyterlab/statedb';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import '../style/index.css';

const PANEL_ID = 'workbench-panel';
const OPEN_COMMAND = 'workbench:open-panel';
/** Where JupyterLab's layout restorer saves the layout (its `left` area names the shown panel). */
const LAYOUT_KEY = 'layout-restorer:data';
/** What the panel's page shows once it is usable: its widgets, or a failing cell's output. */
const READY_SELECTOR = '.jupyter-widgets, .jp-OutputArea-output';
/** How long the loading note waits for that before it leaves the page to say why not. */
const LOADING_TIMEOUT_MS = 120_000;

const workbenchIcon = new LabIcon({
  name: 'workbench:panel',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M2 6h20v3H2z"/><path d="M4 9h2.5v11H4zM17.5 9H20v11h-2.5z"/>' +
    '<path d="M8 3h8v2H8z"/></g></svg>'
});

/**
 * A sidebar widget whose content is the Voila-rendered Workbench notebook.
 *
 * The iframe is loaded the first time the panel is shown, or at once when the
 * saved layout shows it (see `shownOnRestore`), so a collapsed panel costs no
 * Voila kernel.
 */
class WorkbenchPanel extends Widget {
  constructor() {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-WorkbenchPanel');
    this.title.icon = workbenchIcon;
    this.title.caption = 'Workbench';
    this._loading = document.createElement('div');
    this._loading.className = 'jp-WorkbenchPanel-loading';
    this._loading.innerHTML =
      workbenchIcon.svgstr +
      '<div><b>Workbench</b></div><div>Loading your datasets, tasks, models and services…</div>';
    this._loading.hidden = true;
    this._iframe = document.createElement('iframe');
    this._iframe.title = 'Workbench';
    this.node.appendChild(this._loading);
    this.node.appendChild(this._iframe);
  }

  /** Request the Voila page, once. */
  load(): void {
    if (!this._iframe.src) {
      // Voila accepts ?theme=light|dark; follow JupyterLab's theme at load time.
      const dark = document.body.dataset.jpThemeLight === 'false';
      const url = URLExt.join(PageConfig.getBaseUrl(), 'workbench/panel');
      this._loading.hidden = false;
      this._iframe.src = url + (dark ? '?theme=dark' : '');
      this._waitUntilReady();
    }
  }

  /** Keep the loading note over the page until its widgets are drawn. */
  private _waitUntilReady(): void {
    const started = Date.now();
    const look = (): void => {
      const page = this._iframe.contentDocument;
      const ready = page?.querySelector(READY_SELECTOR);
      if (ready || Date.now() - started > LOADING_TIMEOUT_MS) {
        this._loading.hidden = true;
      } else {
        window.setTimeout(look, 100);
      }
    };
    look();
  }

  protected onAfterShow(): void {
    this.load();
  }

  private _iframe: HTMLIFrameElement;
  private _loading: HTMLDivElement;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@workbench/panel:plugin',
  description: 'The Workbench panel in the left sidebar.',
  autoStart: true,
  // ILabShell keeps this plugin out of non-Lab frontends (Voila loads lab extensions too).
  requires: [ILabShell],
  optional: [ILayoutRestorer, ILauncher, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    restorer: ILayoutRestorer | null,
    launcher: ILauncher | null,
    state: IStateDB | null
  ): void => {
    const panel = new WorkbenchPanel();
    labShell.add(panel, 'left', { rank: 200 });

    app.commands.addCommand(OPEN_COMMAND, {
      label: 'Workbench',
      caption: 'Open the Workbench panel',
      icon: workbenchIcon,
      execute: () => labShell.activateById(panel.id)
    });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
      void shownOnRestore(state).then(shown => {
        if (shown) {
          panel.load();
        }
      });
    }
    if (launcher) {
      launcher.add({ command: OPEN_COMMAND, category: 'Other', rank: 0 });
    }
  }
};

/** Whether the saved layout shows the Workbench panel in an expanded left sidebar. */
async function shownOnRestore(state: IStateDB | null): Promise<boolean> {
  if (!state || new URL(window.location.href).searchParams.has('reset')) {
    return false;
  }
  try {
    const layout = (await state.fetch(LAYOUT_KEY)) as {
      left?: { current?: string; collapsed?: boolean; visible?: boolean };
    } | null;
    const left = layout?.left;
    return left?.current === PANEL_ID && !left.collapsed && left.visible !== false;
  } catch {
    return false; // no saved layout: the panel loads when shown
  }
}

export default plugin;
