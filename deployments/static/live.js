// "Type as it streams": what is typed goes to /v1/stream/ws as fragments; each sentence is spoken once
// the text after it confirms its end. Speak (Ctrl+Enter) ends the text, Stop (Escape) clears and closes.
// Uses demo.js's helpers (state, renderWords, byteToChar, drawChunk, setStatus, showError, headers).
"use strict";

let live = null; // {ws, ctx, sent, concat, base, sources, playhead, timeline, rate, pending}

function liveOn() {
  return $("live").checked;
}

function liveOpen() {
  stop(false);
  resetState();
  $("error").hidden = true;
  const url = new URL("v1/stream/ws", location.href); // under the page's route prefix
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const key = $("api-key").value.trim();
  const ws = new WebSocket(url, key ? [`bearer.${key}`] : []);
  ws.binaryType = "arraybuffer";
  const run = (live = {
    ws, ctx: new AudioContext(), sent: "", concat: "", base: 0, sources: [], playhead: 0, timeline: null,
    rate: 22050, offset: 0, pending: [], spans: new Map(), open: false, queue: [],
  });
  state.clickAt = performance.now();
  state.liveFragments = 0;
  setStatus("connecting");
  ws.onopen = () => {
    ws.send(JSON.stringify({
      type: "start", model: $("model").value, voice: $("voice").value, seed: Number($("seed").value) || 0,
      length_scale: 1 / Number($("speed").value), sample_format: "f32le", marks: ["word"],
    }));
    run.open = true;
    run.queue.splice(0).forEach((m) => ws.send(m));
  };
  ws.onmessage = (event) => liveReceive(run, event.data);
  ws.onerror = () => showError("The stream socket failed.");
  ws.onclose = (event) => {
    if (live !== run) return;
    state.streamEndAt = performance.now();
    if (event.code !== 1000 && !state.error) showError(`The socket closed (${event.code}): ${event.reason}`);
    setStatus(state.error ? "failed" : "streamed");
    live = null;
  };
  requestAnimationFrame(() => liveHighlight(run));
  return run;
}

function liveSend(run, message) {
  const text = JSON.stringify(message);
  if (run.open) run.ws.send(text);
  else run.queue.push(text);
}

function liveReceive(run, data) {
  if (data instanceof ArrayBuffer) {
    const samples = new Float32Array(data);
    const buffer = new AudioBuffer({ length: samples.length, numberOfChannels: 1, sampleRate: run.rate });
    buffer.copyToChannel(samples, 0);
    const source = new AudioBufferSourceNode(run.ctx, { buffer });
    source.connect(run.ctx.destination);
    run.playhead = Math.max(run.playhead, run.ctx.currentTime + 0.05);
    source.start(run.playhead);
    run.sources.push(source);
    if (!run.timeline || run.playhead > run.timeline.at + (run.offset - run.timeline.offset) / run.rate + 0.001) {
      run.timeline = { offset: run.offset, at: run.playhead }; // first chunk, or after a pause in the text
    }
    run.playhead += samples.length / run.rate;
    drawChunk(samples, run.offset, run.rate);
    run.offset += samples.length;
    state.chunks += 1;
    if (state.firstAudioAt === null) {
      state.firstAudioAt = performance.now();
      $("first-audio").textContent = `${Math.round(state.firstAudioAt - state.clickAt)} ms after the first key`;
    }
    return;
  }
  const record = JSON.parse(data);
  if (record.type === "start") {
    run.rate = record.sample_rate;
    state.variant = record.variant;
    $("variant").textContent = record.variant;
    setStatus("listening");
  } else if (record.type === "marks") {
    state.marks += record.marks.length;
    run.pending.push(...record.marks.filter((m) => m.type === "word"));
  } else if (record.type === "cleared") {
    setStatus("cleared");
  } else if (record.type === "error") {
    showError(record.error.message);
  }
}

function liveHighlight(run) {
  if (live !== run && run.pending.length === 0) return;
  const now = run.ctx.currentTime;
  const t = run.timeline;
  while (run.pending.length && t && t.at + (run.pending[0].time / 1000 - t.offset / run.rate) <= now) {
    const mark = run.pending.shift();
    const chars = byteToChar(run.concat);
    const at = chars.get(mark.start);
    const end = chars.get(mark.end);
    const span = at === undefined ? null : wordSpan(run.spans, at - run.base, end === undefined ? undefined : end - run.base);
    if (span) {
      $("words").querySelectorAll(".current").forEach((s) => s.classList.replace("current", "spoken"));
      span.classList.add("current");
      state.wordsHighlighted += 1;
    }
  }
  requestAnimationFrame(() => liveHighlight(run));
}

function liveInput() {
  if (!liveOn()) return;
  const run = live || liveOpen();
  const value = $("text").value;
  if (value.startsWith(run.sent)) {
    const fragment = value.slice(run.sent.length);
    if (!fragment) return;
    liveSend(run, { type: "text", text: fragment });
    run.concat += fragment;
  } else { // an edit before the end: barge in, then speak the new text from its start
    liveSend(run, { type: "clear" });
    run.base = run.concat.length;
    liveSend(run, { type: "text", text: value });
    run.concat += value;
  }
  run.sent = value;
  state.liveFragments += 1;
  run.spans = renderWords(value);
}

function liveEnd() {
  if (live) liveSend(live, { type: "end" });
  setStatus("ending");
}

function liveStop() {
  if (!live) return;
  const run = live;
  live = null;
  if (run.open) run.ws.send(JSON.stringify({ type: "clear" }));
  run.ws.close(1000);
  run.sources.forEach((s) => { try { s.stop(); } catch (_) { /* not started */ } });
  run.ctx.close();
  state.stoppedAt = performance.now();
  setStatus("stopped");
}

$("text").addEventListener("input", liveInput);
$("live").addEventListener("change", () => {
  if (!liveOn()) liveStop();
  $("speak").textContent = liveOn() ? "End" : "Speak";
});
$("controls").addEventListener("submit", (event) => { // before demo.js's listener: End in live mode
  if (!liveOn()) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  liveEnd();
}, true);
document.addEventListener("keydown", (event) => { if (event.key === "Escape") liveStop(); });
