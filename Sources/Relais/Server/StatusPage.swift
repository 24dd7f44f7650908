/// The status page at `GET /` of the admin endpoint, for a person: queue
/// depth, the last hour's throughput as a chart, per-upstream results and
/// latency, upstream states with pause/resume buttons, the latest
/// failures. One self-contained document (no external assets); its script
/// reads the JSON API with the token given after `#token=` in the address.
enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>Relais status</title>
        <style>
          body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
          h1 { font-size: 1.4em; margin: 0 0 .5em; }
          h2 { font-size: 1.1em; margin: 1.5em 0 .4em; }
          table { border-collapse: collapse; }
          td, th { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: left; }
          td.n { text-align: right; font-variant-numeric: tabular-nums; }
          .figure { display: inline-block; margin-right: 2em; }
          .figure b { display: block; font-size: 1.8em; }
          .down, .paused { color: #b00; }
          #error { color: #b00; }
          svg { border: 1px solid #ddd; background: #fafafa; }
        </style>
        </head>
        <body>
        <h1>Relais</h1>
        <p id="error"></p>
        <div>
          <span class="figure">queued <b id="queued">–</b></span>
          <span class="figure">accepted, last hour <b id="accepted">–</b></span>
          <span class="figure">delivered, last hour <b id="delivered">–</b></span>
          <span class="figure">deferred or failed, last hour <b id="problems">–</b></span>
        </div>
        <h2>Throughput and queue, last hour (per minute)</h2>
        <svg id="chart" width="720" height="160" role="img" aria-label="accepted and delivered per minute, queue depth"></svg>
        <p><span style="color:#36c">■</span> accepted <span style="color:#393">■</span> delivered
          <span style="color:#c60">●</span> queued</p>
        <h2>Upstreams</h2>
        <table id="upstreams"><thead><tr><th>upstream</th><th>state</th><th>delivered</th><th>deferred</th>
          <th>failed</th><th>mean latency</th><th>quota</th><th></th></tr></thead><tbody></tbody></table>
        <h2>Latest failures</h2>
        <table id="failures"><thead><tr><th>time</th><th>upstream</th><th>result</th><th>reply</th></tr></thead><tbody></tbody></table>
        <script>
        "use strict";
        const token = new URLSearchParams(location.hash.slice(1)).get("token");
        const headers = token ? { Authorization: "Bearer " + token } : {};
        const api = (path, method) => fetch(path, { method: method || "GET", headers }).then(r => {
          if (!r.ok) throw new Error(path + ": HTTP " + r.status);
          return r.json();
        });
        const text = (value) => document.createTextNode(String(value));
        function row(table, cells) {
          const tr = document.createElement("tr");
          for (const cell of cells) {
            const td = document.createElement("td");
            if (cell instanceof Node) td.appendChild(cell); else td.appendChild(text(cell));
            if (typeof cell === "number") td.className = "n";
            tr.appendChild(td);
          }
          table.querySelector("tbody").appendChild(tr);
          return tr;
        }
        function chart(minutes) {
          const svg = document.getElementById("chart");
          svg.textContent = "";
          const top = Math.max(1, ...minutes.map(m => Math.max(m.accepted, m.delivered, m.queued || 0)));
          const now = Math.floor(Date.now() / 60000) * 60;
          for (const [key, color, offset] of [["accepted", "#36c", -5], ["delivered", "#393", 0]]) {
            for (const m of minutes) {
              const height = m[key] / top * 140;
              const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
              bar.setAttribute("x", (700 - (now - m.start) / 60 * (680 / 59) + offset).toFixed(1));
              bar.setAttribute("y", (150 - height).toFixed(1));
              bar.setAttribute("width", "5");
              bar.setAttribute("height", height.toFixed(1));
              bar.setAttribute("fill", color);
              bar.setAttribute("data-series", key);
              svg.appendChild(bar);
            }
          }
          for (const m of minutes.filter(m => m.queued !== undefined && m.queued !== null)) {
            const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
            dot.setAttribute("cx", (700 - (now - m.start) / 60 * (680 / 59) + 7).toFixed(1));
            dot.setAttribute("cy", (150 - m.queued / top * 140).toFixed(1));
            dot.setAttribute("r", "3");
            dot.setAttribute("fill", "#c60");
            dot.setAttribute("data-series", "queued");
            dot.setAttribute("data-value", String(m.queued));
            svg.appendChild(dot);
          }
        }
        async function refresh() {
          try {
            const [queue, activity, upstreams] = await Promise.all([api("/api/queue?limit=1"), api("/api/activity"), api("/api/upstreams")]);
            const sum = (key) => activity.minutes.reduce((total, m) => total + m[key], 0);
            document.getElementById("queued").textContent = queue.total;
            document.getElementById("accepted").textContent = sum("accepted");
            document.getElementById("delivered").textContent = sum("delivered");
            document.getElementById("problems").textContent = sum("deferred") + sum("failed");
            chart(activity.minutes);
            const totals = Object.fromEntries(activity.upstreams.map(u => [u.name, u]));
            const names = [...new Set([...upstreams.map(u => u.name), ...activity.upstreams.map(u => u.name)])].sort();
            const table = document.getElementById("upstreams");
            table.querySelector("tbody").textContent = "";
            for (const name of names) {
              const state = upstreams.find(u => u.name === name) || { state: "up" };
              const total = totals[name] || { delivered: 0, deferred: 0, failed: 0, mean_latency_seconds: 0 };
              const button = document.createElement("button");
              const paused = state.state === "paused by an operator";
              button.textContent = paused ? "resume" : "pause";
              button.onclick = () => api("/api/upstreams/" + encodeURIComponent(name) + (paused ? "/resume" : "/pause"), "POST").then(refresh);
              const tr = row(table, [name, state.state, total.delivered, total.deferred, total.failed,
                total.mean_latency_seconds.toFixed(3) + " s", state.quota || "", name === "maildir" ? "" : button]);
              tr.dataset.upstream = name;
              if (/^(down|paused)/.test(state.state)) tr.children[1].className = state.state.split(" ")[0];
            }
            const failures = document.getElementById("failures");
            failures.querySelector("tbody").textContent = "";
            for (const failure of activity.failures) {
              row(failures, [new Date(failure.time * 1000).toISOString().slice(11, 19) + "Z", failure.upstream, failure.result, failure.reply]);
            }
            document.getElementById("error").textContent = "";
            document.body.dataset.loaded = "yes";
          } catch (error) {
            document.getElementById("error").textContent = String(error);
          }
        }
        refresh();
        setInterval(refresh, 5000);
        </script>
        </body>
        </html>
        """#
}
