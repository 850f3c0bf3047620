import { describe, expect, it } from 'vitest';
import { htmlBlocks } from '../../src/rag/html';
import { splitDocument } from '../../src/rag/passages';

describe('HTML documents to text', () => {
  it('keeps what a reader sees: headings as sections, paragraphs, lists, tables, pre', () => {
    const html = `<!doctype html><html><head><title>Page title</title><meta charset="utf-8"></head><body>
      <nav>Home</nav>
      <h1>Billing <small>guide</small></h1>
      <p>Refunds are   issued
         within <b>5&nbsp;days</b> &amp; never later.<br>Ask support.</p>
      <ul><li>Monthly</li><li>Annual</li></ul>
      <h2>Prices</h2>
      <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Team</td><td>10 &euro;</td></tr></table>
      <pre>curl -X POST \\
  https://api.example.com</pre>
    </body></html>`;
    expect(htmlBlocks(html)).toEqual([
      { text: 'Home', headings: [], code: false },
      // &nbsp; is whitespace to a reader, and collapses like any other.
      { text: 'Refunds are issued within 5 days & never later.\nAsk support.', headings: ['Billing guide'], code: false },
      { text: 'Monthly\nAnnual', headings: ['Billing guide'], code: false },
      { text: 'Plan | Price\nTeam | 10 €', headings: ['Billing guide', 'Prices'], code: false },
      { text: 'curl -X POST \\\n  https://api.example.com', headings: ['Billing guide', 'Prices'], code: true },
    ]);
  });

  it('drops scripts, styles, templates, inline SVG and comments, and runs nothing', () => {
    const globals = globalThis as { pwned?: boolean };
    const html =
      '<p>Visible.</p><script>globalThis.pwned = true; document.write("<p>injected</p>")</script>' +
      '<style>p { color: red }</style><template><p>hidden template</p></template><!-- a comment -->' +
      '<svg><text>svg text</text></svg><img src="x" onerror="globalThis.pwned = true"><noscript>enable js</noscript>' +
      '<iframe srcdoc="<p>framed</p>"></iframe><p onclick="globalThis.pwned = true">Also visible.</p>';
    const text = htmlBlocks(html)
      .map((b) => b.text)
      .join('\n');
    expect(text).toBe('Visible.\nAlso visible.');
    expect(globals.pwned).toBeUndefined();
  });

  it('treats markup in text as text once decoded, never as tags', () => {
    const [block] = htmlBlocks('<p>Use &lt;script&gt;alert(1)&lt;/script&gt; with care.</p>');
    expect(block.text).toBe('Use <script>alert(1)</script> with care.');
  });

  it('survives broken markup', () => {
    expect(htmlBlocks('<p>one<p>two<div>three').map((b) => b.text)).toEqual(['one', 'two', 'three']);
    expect(htmlBlocks('<h2>Unclosed <p>body text')).toEqual([]);
    expect(htmlBlocks('<script>never closed <p>x</p>')).toEqual([]);
  });

  it('splits HTML files into passages like Markdown', () => {
    const passages = splitDocument('faq.html', '<h1>FAQ</h1><h2>Refunds</h2><p>Refunds are issued within 5 days.</p>');
    expect(passages).toEqual([
      { id: 'faq.html#0', document: 'faq.html', index: 0, heading: 'FAQ > Refunds', text: 'Refunds are issued within 5 days.' },
    ]);
  });
});
