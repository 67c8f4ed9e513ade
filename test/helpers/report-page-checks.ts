import type { Page } from 'playwright-core';

/** What a reader of the report meets, measured in the open page: the checks of the report's layout (issue 27). */
export interface PageReading {
  scrollWidth: number;
  innerWidth: number;
  /** The page's section headings, top-down. */
  headings: string[];
  /** The tick labels of every time axis, as drawn. */
  tickLabels: string[];
  /** The times of the header. */
  times: string[];
  /** Ids, commands and log links whose text the browser broke over more than one line. */
  brokenTexts: string[];
  /** Every log link's href, resolved. */
  logHrefs: string[];
}

/**
 * Runs in the page (a string: this project compiles without the DOM's types). A text laid out on
 * one line has one client rect per line it takes.
 */
const readingScript = `(() => {
  const lines = (node) => {
    const range = document.createRange();
    range.selectNodeContents(node);
    return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
  };
  const texts = (element) => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const out = [];
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) if ((node.textContent || '').trim() !== '') out.push(node);
    return out;
  };
  const unbreakable = [...document.querySelectorAll('.id, td.id, code.command, a.log')];
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    headings: [...document.querySelectorAll('h2')].map((h) => h.textContent || ''),
    tickLabels: [...document.querySelectorAll('[data-x-ticks]')].flatMap((chart) => JSON.parse(chart.getAttribute('data-x-ticks') || '[]')).filter((label) => label !== ''),
    times: [...document.querySelectorAll('[data-testid="times"] span')].map((span) => span.textContent || ''),
    brokenTexts: unbreakable.flatMap((element) => texts(element).filter((text) => lines(text) > 1).map((text) => text.textContent || '')),
    logHrefs: [...document.querySelectorAll('a.log')].map((link) => link.href),
  };
})()`;

export function readPage(page: Page): Promise<PageReading> {
  return page.evaluate(readingScript) as Promise<PageReading>;
}

/** A time axis label: a time of day in UTC (to the minute, second or tenth), the date under the first and at each new day; or a date. */
export const isoTickLabel = /^(\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(\n\d{4}-\d{2}-\d{2})?|\d{4}-\d{2}-\d{2})$/;
