// The closed-loop load of bench:ingest (single and batch phases): keep-alive connections, each POSTing its next
// request as soon as the last one is answered.
//
// Two clients, chosen with `--client`:
//   autocannon (default)  the raw chain's own closed-loop generator (../shared/perf/raw-chain/load_ac.js), so both
//                         sides of a comparison pay the same for their load: a fresh body per request
//                         (setupRequest), one request in flight per connection;
//   http                  node:http with a keep-alive agent, one promise per request — what this bench used before;
//                         about twice autocannon's CPU per request (0.135–0.146 against 0.073 ms against a bare
//                         node:http server, measured 2026-12-04), which the two services under test then lack.
//
// Stopping: once `isStopped()` holds, each connection finishes the request it has in flight and closes, so every
// request sent is answered and counted (an answered 202 is what the accepted = persisted check adds up).
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Runs the load until `isStopped()` and every connection's last request is answered.
 * `onAnswer({ status, accepted }, ms)` is called once per request (status 0: no answer, a socket error).
 */
export function closedLoop({ client, ports, connections, path, key, perRequest, nextBody, onAnswer, isStopped }) {
  // Connections spread over the ports as worker w → ports[w % ports.length].
  const perPort = ports.map(
    (_, i) => Math.floor(connections / ports.length) + (i < connections % ports.length ? 1 : 0),
  );
  if (client === 'http') return httpLoop({ ports, perPort, path, key, nextBody, onAnswer, isStopped });
  if (client !== 'autocannon') throw new Error(`--client: autocannon or http, not ${client}`);
  const autocannon = require('autocannon');
  return Promise.all(
    ports.map((port, i) =>
      perPort[i] === 0
        ? undefined
        : new Promise((resolve, reject) => {
            const instance = autocannon(
              {
                url: `http://127.0.0.1:${port}${path}`,
                connections: perPort[i],
                // Ended by the connections themselves (below), not by a clock.
                duration: 24 * 3600,
                timeout: 30,
                requests: [
                  {
                    method: 'POST',
                    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
                    setupRequest: (request) => ({ ...request, body: nextBody() }),
                  },
                ],
              },
              (err) => (err ? reject(err) : resolve()),
            );
            instance.on('response', (connection, status, _bytes, ms) => {
              // A 202 accepts the request's updates whole (status-ingest answers all or nothing).
              onAnswer({ status, accepted: status === 202 ? perRequest : 0 }, ms);
              // autocannon sends the connection's next request right after this event unless it reached its
              // responseMax: set so, the connection closes once this answer is in, with nothing in flight.
              if (isStopped()) connection.responseMax = connection.reqsMade;
            });
            instance.on('reqError', () => onAnswer({ status: 0, accepted: 0 }, 0));
            // A connection that never gets an answer again (its server gone) cannot end by itself: once stopped,
            // autocannon's own stop ends whatever is left after its request timeout.
            const watch = setInterval(() => {
              if (!isStopped()) return;
              clearInterval(watch);
              setTimeout(() => instance.stop(), 35_000).unref();
            }, 200);
            watch.unref();
          }),
    ),
  ).then(() => undefined);
}

function httpLoop({ ports, perPort, path, key, nextBody, onAnswer, isStopped }) {
  const agents = ports.map((_, i) => new http.Agent({ keepAlive: true, maxSockets: Math.max(1, perPort[i]) }));
  const worker = async (port, agent) => {
    while (!isStopped()) {
      const r = await post(agent, port, path, nextBody(), key);
      onAnswer(r, r.ms);
    }
  };
  return Promise.all(
    ports.flatMap((port, i) => Array.from({ length: perPort[i] }, () => worker(port, agents[i]))),
  ).then(() => {
    for (const a of agents) a.destroy();
  });
}

/** One POST on a keep-alive agent; resolves with the status (0: no answer), the updates accepted and the time. */
export function post(agent, port, path, body, key) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${key}`,
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let accepted = 0;
          if (res.statusCode === 202) {
            try {
              accepted = Number(JSON.parse(Buffer.concat(chunks).toString()).accepted) || 0;
            } catch {
              accepted = 0;
            }
          }
          resolve({ status: res.statusCode, accepted, ms: performance.now() - started });
        });
      },
    );
    req.on('error', () => resolve({ status: 0, accepted: 0, ms: performance.now() - started }));
    req.end(body);
  });
}
