// parley.js — Parley's browser SDK for the JSON signalling protocol v1
// (docs/signalling.md). A dependency-free ES module:
//
//   import { Device } from '/sdk/parley.js';
//   const device = new Device(token, { onTokenWillExpire: async () => fetchNewToken() });
//   device.on('incoming', call => call.accept());
//   await device.register();
//   const call = await device.connect({ params: { To: 'bob' } });
//   call.sendDigits('123'); call.disconnect();

const PROTOCOL = 1;

class Emitter {
  constructor() { this._h = new Map(); }
  on(ev, fn) { if (!this._h.has(ev)) this._h.set(ev, new Set()); this._h.get(ev).add(fn); return this; }
  off(ev, fn) { this._h.get(ev)?.delete(fn); return this; }
  emit(ev, ...args) {
    for (const fn of [...(this._h.get(ev) || [])]) {
      try { fn(...args); } catch (e) { console.error('parley: handler for', ev, 'threw', e); }
    }
  }
}

function defaultURL() {
  const l = globalThis.location;
  if (!l) return 'ws://127.0.0.1:8080/v1/signal';
  return (l.protocol === 'https:' ? 'wss://' : 'ws://') + l.host + '/v1/signal';
}

let refSeq = 0;
const newRef = () => 'r' + Date.now().toString(36) + (++refSeq).toString(36);

// waitGathering resolves when ICE gathering completes or after ms.
function waitGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise(res => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); pc.removeEventListener('icegatheringstatechange', check); res(); }
    function check() { if (pc.iceGatheringState === 'complete') done(); }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// Call is one call of a Device. Events: 'ringing', 'accept', 'disconnect',
// 'reject', 'cancel', 'error', 'dtmf' (digits from the other party),
// 'state' (new state). States: pending (incoming, not answered), connecting,
// ringing, open, closed.
export class Call extends Emitter {
  constructor(device, { direction, callSid = '', ref = '', from = '', to = '', sdp = '' }) {
    super();
    this.device = device;
    this.direction = direction;
    this.callSid = callSid;
    this.ref = ref;
    this.from = from;
    this.to = to;
    this.state = direction === 'incoming' ? 'pending' : 'connecting';
    this.muted = false;
    this._remoteSdp = sdp;
    this._pc = null;
    this._stream = null;
    this.audio = null;
  }
  _setState(s) { if (this.state !== s) { this.state = s; this.emit('state', s); } }

  async _peer() {
    const pc = new RTCPeerConnection({ iceServers: this.device.iceServers });
    this._pc = pc;
    pc.onicecandidate = e => {
      // Candidates found after the SDP was sent are trickled.
      if (e.candidate && this._sdpSent) this.device._send({ type: 'candidate', callSid: this.callSid, ref: this.ref, candidate: e.candidate.toJSON() });
    };
    pc.ontrack = e => {
      const a = this.audio || new Audio();
      a.autoplay = true;
      a.srcObject = e.streams[0] || new MediaStream([e.track]);
      this.audio = a;
      a.play?.().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') { this.emit('error', new Error('media connection failed')); this.disconnect(); }
    };
    const constraints = this.device.options.audio ?? true;
    this._stream = await navigator.mediaDevices.getUserMedia({ audio: constraints });
    for (const t of this._stream.getAudioTracks()) pc.addTrack(t, this._stream);
    return pc;
  }

  // accept answers an incoming call.
  async accept() {
    if (this.direction !== 'incoming' || this.state !== 'pending') return;
    this._setState('connecting');
    try {
      const pc = await this._peer();
      await pc.setRemoteDescription({ type: 'offer', sdp: this._remoteSdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await waitGathering(pc, 1500);
      if (this.state === 'closed') return;
      this._sdpSent = true;
      this.device._send({ type: 'answer', callSid: this.callSid, sdp: pc.localDescription.sdp });
      this._setState('open');
      this.emit('accept', this);
    } catch (e) {
      this.emit('error', e);
      this.reject();
    }
  }

  // reject refuses an incoming call that is still pending.
  reject() {
    if (this.state !== 'pending' && this.state !== 'connecting') return;
    this.device._send({ type: 'reject', callSid: this.callSid, status: 603 });
    this._close('reject');
  }

  // disconnect hangs up.
  disconnect() {
    if (this.state === 'closed') return;
    this.device._send({ type: 'hangup', callSid: this.callSid || undefined, ref: this.ref || undefined });
    this._close('disconnect');
  }

  // sendDigits sends DTMF (0-9 * # A-D; a comma pauses half a second).
  sendDigits(digits) {
    if (this.state !== 'open' || !this.callSid) throw new Error('call is not open');
    this.device._send({ type: 'dtmf', callSid: this.callSid, digits: String(digits) });
  }

  mute(on = true) {
    this.muted = !!on;
    for (const t of this._stream?.getAudioTracks() || []) t.enabled = !this.muted;
    this.emit('mute', this.muted);
  }

  // stats returns the audio RTP counters of the call's connection.
  async stats() {
    const out = { packetsReceived: 0, packetsSent: 0, bytesReceived: 0, bytesSent: 0 };
    if (!this._pc) return out;
    (await this._pc.getStats()).forEach(r => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') { out.packetsReceived += r.packetsReceived || 0; out.bytesReceived += r.bytesReceived || 0; }
      if (r.type === 'outbound-rtp' && r.kind === 'audio') { out.packetsSent += r.packetsSent || 0; out.bytesSent += r.bytesSent || 0; }
    });
    return out;
  }

  _close(why) {
    if (this.state === 'closed') return;
    this._setState('closed');
    for (const t of this._stream?.getTracks() || []) t.stop();
    try { this._pc?.close(); } catch (_) { /* already closed */ }
    if (this.audio) this.audio.srcObject = null;
    this.device._forget(this);
    this.emit(why, this);
    if (why !== 'disconnect') this.emit('disconnect', this);
  }

  async _frame(f) {
    switch (f.type) {
      case 'ringing':
        if (f.callSid) this.callSid = f.callSid;
        this._setState('ringing');
        this.emit('ringing', this);
        break;
      case 'answer':
        if (f.callSid) this.callSid = f.callSid;
        try {
          await this._pc.setRemoteDescription({ type: 'answer', sdp: f.sdp });
          this._setState('open');
          this.emit('accept', this);
        } catch (e) { this.emit('error', e); this.disconnect(); }
        break;
      case 'candidate':
        try { await this._pc?.addIceCandidate(f.candidate); } catch (e) { console.warn('parley: candidate', e); }
        break;
      case 'dtmf':
        this.emit('dtmf', f.digits);
        break;
      case 'hangup':
        this._close(this.state === 'pending' ? 'cancel' : 'disconnect');
        break;
      case 'error':
        this.emit('error', Object.assign(new Error(f.message || f.code), { code: f.code }));
        if (this.state === 'connecting' || this.state === 'ringing') this._close('disconnect');
        break;
    }
  }
}

// Device is one registration. Events: 'registered', 'unregistered',
// 'incoming' (Call), 'error', 'tokenWillExpire', 'message',
// 'state' (connecting, registered, reconnecting, closed).
export class Device extends Emitter {
  constructor(token, options = {}) {
    super();
    this.token = token;
    this.options = options;
    this.url = options.url || defaultURL();
    this.state = 'closed';
    this.identity = '';
    this.iceServers = [];
    this.calls = new Map(); // callSid or ref → Call
    this._ws = null;
    this._backoff = 500;
    this._wantOpen = false;
    this._pinger = null;
    if (options.onTokenWillExpire) this.on('tokenWillExpire', async () => {
      const t = await options.onTokenWillExpire(this);
      if (t) this.updateToken(t);
    });
  }
  _setState(s) { if (this.state !== s) { this.state = s; this.emit('state', s); } }

  // register opens the socket and registers; it resolves on registered and
  // rejects on the first error. The device then stays registered,
  // reconnecting with back-off, until unregister or destroy.
  register() {
    this._wantOpen = true;
    return new Promise((resolve, reject) => {
      const ok = () => { this.off('error', bad); resolve(this); };
      const bad = e => { this.off('registered', ok); reject(e); };
      this.once('registered', ok);
      this.once('error', bad);
      this._open();
    });
  }
  once(ev, fn) { const w = (...a) => { this.off(ev, w); fn(...a); }; return this.on(ev, w); }

  _open() {
    this._setState(this.state === 'closed' ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url, 'parley.v1');
    this._ws = ws;
    ws.onopen = () => this._send({ v: PROTOCOL, type: 'register', token: this.token });
    ws.onmessage = e => { let f; try { f = JSON.parse(e.data); } catch (_) { return; } this._frame(f); };
    ws.onclose = () => {
      clearInterval(this._pinger);
      if (this._ws !== ws) return;
      this._ws = null;
      const was = this.state;
      for (const c of [...this.calls.values()]) c._close('disconnect');
      if (was === 'registered') this.emit('unregistered', this);
      if (!this._wantOpen) { this._setState('closed'); return; }
      this._setState('reconnecting');
      const wait = this._backoff;
      this._backoff = Math.min(this._backoff * 2, 30000);
      setTimeout(() => { if (this._wantOpen && !this._ws) this._open(); }, wait * (0.75 + Math.random() / 2));
    };
  }

  _send(f) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(f));
  }

  updateToken(token) {
    this.token = token;
    this._send({ type: 'refresh', token });
  }

  // connect places a call: params.To is the number, client or address
  // dialled; all params go to the outgoing application's webhook.
  async connect({ params = {} } = {}) {
    if (this.state !== 'registered') throw new Error('device is not registered');
    const to = params.To || params.to;
    if (!to) throw new Error('connect needs params.To');
    const call = new Call(this, { direction: 'outgoing', ref: newRef(), to });
    this.calls.set(call.ref, call);
    const pc = await call._peer();
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc, 1500);
    call._sdpSent = true;
    const p = {};
    for (const [k, v] of Object.entries(params)) p[k] = String(v);
    this._send({ type: 'invite', ref: call.ref, to, params: p, sdp: pc.localDescription.sdp });
    return call;
  }

  sendMessage(to, body) { this._send({ type: 'message', to, body }); }

  unregister() { this.destroy(); }

  destroy() {
    this._wantOpen = false;
    for (const c of [...this.calls.values()]) c.disconnect();
    this._ws?.close();
  }

  _forget(call) {
    if (call.callSid) this.calls.delete(call.callSid);
    if (call.ref) this.calls.delete(call.ref);
  }

  _find(f) { return (f.callSid && this.calls.get(f.callSid)) || (f.ref && this.calls.get(f.ref)) || null; }

  _frame(f) {
    switch (f.type) {
      case 'registered':
        this.identity = f.identity;
        this.iceServers = f.iceServers || [];
        this._backoff = 500;
        clearInterval(this._pinger);
        this._pinger = setInterval(() => this._send({ type: 'ping' }), 20000);
        this._setState('registered');
        this.emit('registered', this);
        return;
      case 'tokenWillExpire':
        this.emit('tokenWillExpire', this);
        return;
      case 'incoming': {
        const call = new Call(this, { direction: 'incoming', callSid: f.callSid, from: f.from, to: f.to, sdp: f.sdp });
        this.calls.set(call.callSid, call);
        this._send({ type: 'ringing', callSid: call.callSid });
        this.emit('incoming', call);
        return;
      }
      case 'message':
        this.emit('message', { from: f.from, to: f.to, body: f.body });
        return;
      case 'pong':
        return;
    }
    const call = this._find(f);
    if (call) {
      if (f.callSid && !call.callSid) { call.callSid = f.callSid; this.calls.set(f.callSid, call); }
      call._frame(f);
      return;
    }
    if (f.type === 'error') {
      const err = Object.assign(new Error(f.message || f.code), { code: f.code });
      if (f.code === 'token_expired' || f.code === 'unauthorized' || f.code === 'auth_timeout') this._wantOpen = false;
      this.emit('error', err);
    }
  }
}
