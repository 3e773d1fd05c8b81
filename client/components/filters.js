import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';

/**
 * The list's search box. Typing updates the URL after a short pause, so each keystroke does not
 * make a request; Enter applies at once.
 * @param {{ value: string, onSearch: (v: string, typing: boolean) => void, hint: string }} props
 */
export function SearchBox({ value, onSearch, hint }) {
  const [draft, setDraft] = useState(value);
  const timer = useRef(/** @type {any} */ (0));
  useEffect(() => setDraft(value), [value]);
  useEffect(() => () => clearTimeout(timer.current), []);
  return html`
    <form class="search" role="search" onSubmit=${(/** @type {Event} */ e) => {
      e.preventDefault();
      clearTimeout(timer.current);
      onSearch(draft.trim(), false);
    }}>
      <label for="search">Search</label>
      <input id="search" type="search" value=${draft} aria-describedby="search-hint" autocomplete="off"
        onInput=${(/** @type {any} */ e) => {
          const v = e.currentTarget.value;
          setDraft(v);
          clearTimeout(timer.current);
          timer.current = setTimeout(() => onSearch(v.trim(), true), 400);
        }} />
      <span id="search-hint" class="hint">${hint} · press / to search</span>
    </form>
  `;
}

/**
 * @param {{ name: string, label: string, value: string, options: { value: string, label: string }[], onChange: (v: string) => void }} props
 */
export function FilterSelect({ name, label, value, options, onChange }) {
  const id = `filter-${name}`;
  const known = !value || options.some((o) => o.value === value);
  return html`
    <div class="filter">
      <label for=${id}>${label}</label>
      <select id=${id} value=${value} onChange=${(/** @type {any} */ e) => onChange(e.currentTarget.value)}>
        <option value="">All</option>
        ${options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
        ${!known && html`<option value=${value}>${value}</option>`}
      </select>
    </div>
  `;
}
