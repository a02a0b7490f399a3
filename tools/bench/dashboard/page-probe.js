// Injected into every page the dashboard benchmark opens (playwright addInitScript: it runs at
// document start, before the page's own scripts; the page's CSP does not apply to it). It times,
// with the Performance API, in the page's own clock (ms since navigation start):
//
//   first render  the first target row ([data-target]) and the status counts (the "All (n)" filter
//                 button showing a number) are in the DOM ("dom"), and the frame after that has been
//                 painted ("painted": a requestAnimationFrame callback, then a task posted from it,
//                 which runs once that frame is out);
//   filter change from the click's input event (event.timeStamp, when the browser created the event)
//                 to the frame painted once the rows shown match what was asked for (window.__fwBenchExpect
//                 before the click: the "n shown" count and the first row's status).
//
// It also keeps the largest-contentful-paint entries (buffered) for context.
(() => {
  const state = { firstRender: null, filter: [], lcp: [] };
  performance.setResourceTimingBufferSize(100000); // the default 250 entries fill up within a few filter changes
  window.__fwBench = state;
  let firstPending = false;
  let expecting = null;

  const afterNextPaint = (cb) =>
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => cb(performance.now());
      channel.port2.postMessage(0);
    });
  const shown = () => {
    const el = document.querySelector('[data-testid="targets-shown"]');
    return el ? Number((el.textContent || '').replace(/\D/g, '')) : NaN;
  };

  const check = () => {
    if (!firstPending) {
      const row = document.querySelector('[data-target]');
      const all = document.querySelector('[data-filter="all"]');
      if (row && all && /\(\d/.test(all.textContent || '')) {
        firstPending = true;
        const dom = performance.now();
        performance.mark('fw-bench:first-render:dom');
        afterNextPaint((painted) => {
          performance.mark('fw-bench:first-render:painted');
          state.firstRender = { dom, painted };
        });
      }
    }
    const e = expecting;
    if (e && e.t0 !== null && e.dom === null) {
      const first = document.querySelector('[data-target] .fw-status');
      if (shown() === e.count && (!e.status || (first && first.textContent === e.status))) {
        e.dom = performance.now();
        afterNextPaint((painted) => {
          e.painted = painted;
          expecting = null;
          state.filter.push(e);
        });
      }
    }
  };

  window.__fwBenchExpect = (label, count, status) => {
    expecting = { label, count, status, t0: null, dom: null, painted: null };
  };
  document.addEventListener(
    'click',
    (ev) => {
      const target = ev.target;
      if (expecting && expecting.t0 === null && target && target.closest && target.closest('[data-filter]')) {
        expecting.t0 = ev.timeStamp;
        performance.mark('fw-bench:filter:input', { startTime: ev.timeStamp });
        check(); // an answer already on the page (nothing left to change) counts at once
      }
    },
    true,
  );
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
  try {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) state.lcp.push(entry.startTime);
    }).observe({ type: 'largest-contentful-paint', buffered: true });
  } catch {
    /* no LCP in this browser */
  }
})();
