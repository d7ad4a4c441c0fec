import { Device } from '/sdk/parley.js';

const $ = id => document.getElementById(id);
const state = { device: null, call: null, started: 0, timer: null };
window.parleyPhone = state; // for tests and debugging

function setStatus(text, cls) { const s = $('status'); s.textContent = text; s.className = 'pill ' + cls; }

function log(kind, who, detail) {
  const li = document.createElement('li');
  const t = new Date().toLocaleTimeString();
  li.innerHTML = `<span></span><span class="muted"></span>`;
  li.firstChild.textContent = `${kind} ${who}`;
  li.lastChild.textContent = `${detail} · ${t}`;
  $('log').prepend(li);
}

for (const k of ['1','2','3','4','5','6','7','8','9','*','0','#']) {
  const b = document.createElement('button');
  b.textContent = k;
  b.dataset.digit = k;
  b.onclick = () => {
    if (state.call && state.call.state === 'open') state.call.sendDigits(k);
    else $('number').value += k;
  };
  $('pad').append(b);
}

function inCall(call) {
  state.call = call;
  state.started = 0;
  $('hangup').disabled = false;
  $('mute').disabled = false;
  $('call').disabled = true;
  $('inCall').hidden = false;
  $('callState').textContent = call.state;
  call.on('state', s => { $('callState').textContent = s; if (s === 'open' && !state.started) state.started = Date.now(); });
  call.on('dtmf', d => log('DTMF', d, 'received'));
  call.on('error', e => log('Error', call.from || call.to, e.message));
  call.on('disconnect', () => {
    const secs = state.started ? Math.round((Date.now() - state.started) / 1000) : 0;
    log(call.direction === 'incoming' ? '↓' : '↑', call.direction === 'incoming' ? call.from : call.to, state.started ? `${secs}s` : 'not connected');
    state.call = null;
    $('hangup').disabled = true; $('mute').disabled = true; $('call').disabled = false;
    $('mute').textContent = 'Mute';
    $('inCall').hidden = true; $('incoming').hidden = true;
    setStatus('available', 'on');
  });
  setStatus('in call', 'busy');
  clearInterval(state.timer);
  state.timer = setInterval(async () => {
    if (!state.call) return clearInterval(state.timer);
    const s = state.started ? Math.round((Date.now() - state.started) / 1000) : 0;
    $('callTimer').textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    const st = await state.call.stats();
    state.lastStats = st;
    $('rtp').textContent = ` · rx ${st.packetsReceived} / tx ${st.packetsSent} packets`;
  }, 500);
}

$('register').onclick = async () => {
  const token = $('token').value.trim();
  $('loginError').hidden = true;
  if (!token) return;
  const device = new Device(token);
  state.device = device;
  device.on('state', s => { if (s === 'reconnecting') setStatus('reconnecting', 'off'); if (s === 'closed') setStatus('offline', 'off'); });
  device.on('registered', () => setStatus('available', 'on'));
  device.on('tokenWillExpire', () => log('Token', device.identity, 'expires soon: paste a new one'));
  device.on('incoming', call => {
    $('incomingFrom').textContent = call.from;
    $('incoming').hidden = false;
    call.on('cancel', () => { $('incoming').hidden = true; log('Missed', call.from, 'cancelled'); });
    call.on('reject', () => { $('incoming').hidden = true; log('Declined', call.from, ''); });
    state.ringing = call;
  });
  try {
    await device.register();
    $('login').hidden = true;
    $('dialer').hidden = false;
    $('identity').textContent = device.identity;
  } catch (e) {
    $('loginError').textContent = e.message;
    $('loginError').hidden = false;
  }
};

$('accept').onclick = async () => {
  const call = state.ringing;
  if (!call) return;
  $('incoming').hidden = true;
  inCall(call);
  await call.accept();
};
$('reject').onclick = () => { state.ringing?.reject(); };
$('hangup').onclick = () => state.call?.disconnect();
$('mute').onclick = () => {
  if (!state.call) return;
  state.call.mute(!state.call.muted);
  $('mute').textContent = state.call.muted ? 'Unmute' : 'Mute';
};
$('call').onclick = async () => {
  const to = $('number').value.trim();
  if (!to || !state.device) return;
  try {
    const call = await state.device.connect({ params: { To: to } });
    inCall(call);
  } catch (e) { log('Error', to, e.message); }
};
