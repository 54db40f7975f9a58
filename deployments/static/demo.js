// voxstack demo: streams NDJSON from /v1/stream and plays each audio chunk as it arrives.
"use strict";

const $ = (id) => document.getElementById(id);
const WORD = /[\p{L}\p{N}_][\p{L}\p{N}_'’-]*/gu;
const state = (window.demoState = {});
let current = null; // {controller, ctx, sources}

function resetState() {
  Object.assign(state, {
    clickAt: 0, firstAudioAt: null, firstPlaybackAt: null, streamEndAt: null, stoppedAt: null,
    chunks: 0, marks: 0, wordsHighlighted: 0, variant: null, error: null, status: "idle",
  });
}
resetState();

function setStatus(text) {
  state.status = text;
  $("status").textContent = text;
}

function showError(message) {
  state.error = message;
  $("error").textContent = message;
  $("error").hidden = false;
}

function headers() {
  const key = $("api-key").value.trim();
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function loadModels() {
  try {
    const response = await fetch("v1/models", { headers: headers() });
    if (response.status === 401) {
      showError("This service needs an API key: enter it, then press Speak.");
      return;
    }
    const body = await response.json();
    for (const model of body.data) {
      const option = new Option(`${model.id} (${model.sample_rate} Hz)`, model.id);
      option.dataset.voices = JSON.stringify(model.voices || []);
      $("model").add(option);
    }
    fillVoices();
  } catch (error) {
    showError(`Could not load the voice list: ${error}`);
  }
}

function fillVoices() {
  const option = $("model").selectedOptions[0];
  const voices = JSON.parse(option ? option.dataset.voices : "[]");
  $("voice").replaceChildren(...voices.map((v) => new Option(v.language ? `${v.name} (${v.language})` : v.name, v.name)));
}

// Byte offset (UTF-8, as in the marks) -> character offset of the text being spoken.
function byteToChar(text) {
  const table = new Map();
  let bytes = 0;
  let chars = 0;
  for (const ch of text) {
    table.set(bytes, chars);
    bytes += new TextEncoder().encode(ch).length;
    chars += ch.length;
  }
  table.set(bytes, chars);
  return table;
}

function renderWords(text) {
  const box = $("words");
  box.replaceChildren();
  const spans = new Map();
  let last = 0;
  for (const match of text.matchAll(WORD)) {
    box.append(text.slice(last, match.index));
    const span = document.createElement("span");
    span.textContent = match[0];
    box.append(span);
    spans.set(match.index, span);
    last = match.index + match[0].length;
  }
  box.append(text.slice(last));
  return spans;
}

// The span of the word at [start, end) (character offsets), split off the text span it lies in: a run of
// letters is one span until marks say where its words are (Japanese has no spaces between them).
function wordSpan(spans, start, end) {
  if (start === undefined) return undefined;
  for (const [at, span] of spans) {
    const text = span.textContent;
    if (start < at || start >= at + text.length) continue;
    const stop = Math.min(end === undefined || end <= start ? at + text.length : end, at + text.length);
    if (start === at && stop === at + text.length) return span;
    const word = document.createElement("span");
    word.textContent = text.slice(start - at, stop - at);
    if (start > at) {
      span.textContent = text.slice(0, start - at);
      span.after(word);
    } else {
      span.replaceWith(word);
    }
    spans.set(start, word);
    if (stop < at + text.length) {
      const rest = document.createElement("span");
      rest.textContent = text.slice(stop - at);
      word.after(rest);
      spans.set(stop, rest);
    }
    return word;
  }
  return undefined;
}

function drawChunk(samples, offset, rate) {
  const canvas = $("wave");
  const g = canvas.getContext("2d");
  const perSecond = 60;
  const x0 = Math.floor((offset / rate) * perSecond) % canvas.width;
  const width = Math.max(1, Math.ceil((samples.length / rate) * perSecond));
  const step = Math.max(1, Math.floor(samples.length / width));
  g.clearRect(x0, 0, width, canvas.height);
  g.fillStyle = "#1a73e8";
  for (let i = 0; i < width; i++) {
    let lo = 0;
    let hi = 0;
    for (let j = i * step; j < Math.min(samples.length, (i + 1) * step); j++) {
      lo = Math.min(lo, samples[j]);
      hi = Math.max(hi, samples[j]);
    }
    const mid = canvas.height / 2;
    g.fillRect((x0 + i) % canvas.width, mid - hi * mid, 1, Math.max(1, (hi - lo) * mid));
  }
}

function decode(base64, format) {
  const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  if (format === "f32le") return new Float32Array(raw.buffer);
  const ints = new Int16Array(raw.buffer);
  return Float32Array.from(ints, (v) => v / 32768);
}

async function speak() {
  if (!$("model").options.length) await loadModels();
  stop(false);
  resetState();
  $("error").hidden = true;
  state.clickAt = performance.now();
  const text = $("text").value;
  const ctx = new AudioContext();
  const controller = new AbortController();
  const run = (current = { controller, ctx, sources: [] });
  const spans = renderWords(text);
  const chars = byteToChar(text);
  const pending = []; // word marks waiting for their time
  let timeline = null; // {offset, at}: stream sample offset -> AudioContext time
  let playhead = 0;
  let rate = 22050;
  let format = "f32le";
  $("speak").disabled = true;
  $("stop").disabled = false;
  $("first-audio").textContent = "…";
  $("variant").textContent = "…";
  setStatus("requesting");

  const highlight = () => {
    if (current !== run) return;
    const now = ctx.currentTime;
    while (pending.length && timeline && timeline.at + (pending[0].time / 1000 - timeline.offset / rate) <= now) {
      const mark = pending.shift();
      const span = wordSpan(spans, chars.get(mark.start), chars.get(mark.end));
      if (span) {
        $("words").querySelectorAll(".current").forEach((s) => s.classList.replace("current", "spoken"));
        span.classList.add("current");
        state.wordsHighlighted += 1;
      }
    }
    requestAnimationFrame(highlight);
  };
  requestAnimationFrame(highlight);

  const handle = (record) => {
    if (record.type === "start") {
      rate = record.sample_rate;
      format = record.sample_format;
      state.variant = record.variant;
      $("variant").textContent = record.variant;
      setStatus("streaming");
    } else if (record.type === "marks") {
      for (const mark of record.marks) {
        state.marks += 1;
        if (mark.type === "word") pending.push(mark);
      }
    } else if (record.type === "audio") {
      const samples = decode(record.audio, format);
      const buffer = new AudioBuffer({ length: samples.length, numberOfChannels: 1, sampleRate: rate });
      buffer.copyToChannel(samples, 0);
      const source = new AudioBufferSourceNode(ctx, { buffer });
      source.connect(ctx.destination);
      playhead = Math.max(playhead, ctx.currentTime + 0.05);
      source.start(playhead);
      run.sources.push(source);
      if (!timeline || playhead > timeline.at + (record.offset - timeline.offset) / rate + 0.001) {
        timeline = { offset: record.offset, at: playhead }; // first chunk, or after an underrun
      }
      playhead += samples.length / rate;
      drawChunk(samples, record.offset, rate);
      state.chunks += 1;
      if (state.firstAudioAt === null) {
        state.firstAudioAt = performance.now();
        state.firstPlaybackAt = state.firstAudioAt + (timeline.at - ctx.currentTime) * 1000;
        $("first-audio").textContent = `${Math.round(state.firstAudioAt - state.clickAt)} ms`;
      }
    } else if (record.type === "error") {
      showError(record.error.message);
    }
  };

  try {
    const response = await fetch("v1/stream", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers() },
      signal: controller.signal,
      body: JSON.stringify({
        model: $("model").value, voice: $("voice").value, input: text,
        seed: Number($("seed").value) || 0, length_scale: 1 / Number($("speed").value),
        sample_format: "f32le", marks: ["sentence", "word"],
      }),
    });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        message = (await response.json()).error.message;
      } catch (_) { /* not JSON: keep the status line */ }
      if (response.status === 429 || response.status === 503) message = `The service is busy: ${message}`;
      throw new Error(message);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let carry = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines = (carry + value).split("\n");
      carry = lines.pop();
      for (const line of lines) if (line.trim()) handle(JSON.parse(line));
    }
    state.streamEndAt = performance.now();
    setStatus(state.error ? "failed" : "streamed");
  } catch (error) {
    if (error.name === "AbortError") {
      setStatus("stopped");
    } else {
      showError(String(error.message || error));
      setStatus("failed");
    }
  } finally {
    if (current === run) {
      $("speak").disabled = false;
      $("stop").disabled = true;
    }
  }
}

function stop(byUser = true) {
  if (!current) return;
  current.controller.abort();
  current.sources.forEach((s) => { try { s.stop(); } catch (_) { /* not started */ } });
  current.ctx.close();
  current = null;
  if (byUser) {
    state.stoppedAt = performance.now();
    setStatus("stopped");
    $("speak").disabled = false;
    $("stop").disabled = true;
    $("speak").focus();
  }
}

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  speak();
});
$("stop").addEventListener("click", () => stop());
$("model").addEventListener("change", fillVoices);
$("speed").addEventListener("input", () => { $("speed-value").textContent = Number($("speed").value).toFixed(2); });
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("controls").requestSubmit();
});
document.addEventListener("keydown", (event) => { if (event.key === "Escape") stop(); });
loadModels();
