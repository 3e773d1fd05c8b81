import { html, render } from 'htm/preact';
import { App } from './app.js';
import './style.css';

render(html`<${App} />`, /** @type {HTMLElement} */ (document.getElementById('app')));
