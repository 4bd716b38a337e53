// The upload page: picks one file, checks it against the link's limits,
// and sends it with tus (tus-js-client, loaded before this file as the
// global `tus`). The page's data comes from data-* attributes on #app.
// #app's data-phase is ready, uploading, paused, done or error.
(function () {
  'use strict';

  var app = document.getElementById('app');
  if (!app || !app.dataset.id) return;

  function $(id) { return document.getElementById(id); }

  var cfg = {
    id: app.dataset.id,
    endpoint: app.dataset.endpoint,
    maxBytes: Number(app.dataset.maxBytes) || 0,
    accept: (app.dataset.accept || '').split(',').map(function (s) { return s.trim().toLowerCase(); }).filter(Boolean),
    expires: Date.parse(app.dataset.expires || '')
  };

  var el = {
    input: $('file'), drop: $('drop'), picker: $('picker'), note: $('resume-note'),
    transfer: $('transfer'), name: $('file-name'), size: $('file-size'),
    progress: $('progress'), percent: $('percent'), speed: $('speed'), eta: $('eta'),
    pause: $('pause'), resume: $('resume'), status: $('status'),
    done: $('done'), doneName: $('done-name'), doneSize: $('done-size'),
    expiresIn: $('expires-in'), time: $('expires')
  };

  var RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000];

  // ---- formatting ----

  function humanBytes(n) {
    if (n < 1024) return n + ' B';
    var units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    var v = n / 1024, i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    var s = v >= 100 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, '');
    return s + ' ' + units[i];
  }

  function humanDuration(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return sec + ' s';
    var m = Math.round(sec / 60);
    if (m < 60) return m + ' min';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  var TYPE_NAMES = {
    '*/*': 'any type',
    'application/pdf': 'PDF',
    'image/*': 'images',
    'image/png': 'PNG image',
    'image/jpeg': 'JPEG image',
    'image/gif': 'GIF image',
    'image/webp': 'WebP image',
    'image/svg+xml': 'SVG image',
    'text/*': 'text files',
    'text/plain': 'plain text',
    'text/csv': 'CSV',
    'text/markdown': 'Markdown',
    'text/html': 'HTML',
    'application/json': 'JSON',
    'application/xml': 'XML',
    'application/zip': 'ZIP archive',
    'audio/*': 'audio',
    'video/*': 'video',
    'application/msword': 'Word document',
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'Word document',
    'application/vnd.ms-excel': 'Excel spreadsheet',
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'Excel spreadsheet',
    'application/vnd.ms-powerpoint': 'PowerPoint presentation',
    'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'PowerPoint presentation'
  };

  // Extensions the type of a file is guessed from when the browser gives
  // none, or one that does not match.
  var EXT_TYPES = {
    pdf: 'application/pdf',
    png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp',
    svg: 'image/svg+xml', avif: 'image/avif', heic: 'image/heic', heif: 'image/heif',
    tif: 'image/tiff', tiff: 'image/tiff', bmp: 'image/bmp',
    txt: 'text/plain', text: 'text/plain', log: 'text/plain', md: 'text/markdown', markdown: 'text/markdown',
    csv: 'text/csv', tsv: 'text/tab-separated-values', html: 'text/html', htm: 'text/html',
    json: 'application/json', xml: 'application/xml', yaml: 'application/yaml', yml: 'application/yaml',
    zip: 'application/zip', gz: 'application/gzip', tar: 'application/x-tar', '7z': 'application/x-7z-compressed',
    rtf: 'application/rtf', epub: 'application/epub+zip',
    doc: 'application/msword',
    docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    xls: 'application/vnd.ms-excel',
    xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    ppt: 'application/vnd.ms-powerpoint',
    pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    odt: 'application/vnd.oasis.opendocument.text',
    ods: 'application/vnd.oasis.opendocument.spreadsheet',
    odp: 'application/vnd.oasis.opendocument.presentation',
    mp3: 'audio/mpeg', wav: 'audio/wav', m4a: 'audio/mp4', ogg: 'audio/ogg', oga: 'audio/ogg', flac: 'audio/flac',
    mp4: 'video/mp4', m4v: 'video/mp4', mov: 'video/quicktime', webm: 'video/webm', mkv: 'video/x-matroska'
  };

  function acceptText() {
    return cfg.accept.map(function (a) {
      var n = TYPE_NAMES[a];
      return n && a !== '*/*' ? n + ' (' + a + ')' : (n || a);
    }).join(', ');
  }

  // ---- checks ----

  function extOf(name) {
    var i = name.lastIndexOf('.');
    return i > 0 ? name.slice(i + 1).toLowerCase() : '';
  }

  function typeMatches(type, pattern) {
    type = (type || '').split(';')[0].trim().toLowerCase();
    if (!type) return false;
    if (pattern === '*/*' || pattern === '*') return true;
    if (pattern.slice(-2) === '/*') return type.indexOf(pattern.slice(0, -1)) === 0;
    return type === pattern;
  }

  // checkFile says what is wrong with f for this link, or '' when it may
  // be sent. The type is judged again by filestage, from the bytes.
  function checkFile(f) {
    if (f.size === 0) return { title: 'This file is empty.', text: 'Choose a file with something in it.' };
    if (cfg.maxBytes > 0 && f.size > cfg.maxBytes) {
      return { title: 'This file is too large.', text: '“' + f.name + '” is ' + humanBytes(f.size) + '; this link takes at most ' + humanBytes(cfg.maxBytes) + '. Choose a smaller file.' };
    }
    if (!cfg.accept.length) return null;
    var ext = extOf(f.name), type = (f.type || '').toLowerCase();
    var ok = cfg.accept.some(function (a) {
      if (a.charAt(0) === '.') return '.' + ext === a;
      return typeMatches(type, a) || (EXT_TYPES[ext] !== undefined && typeMatches(EXT_TYPES[ext], a));
    });
    if (ok) return null;
    var knownType = type && type !== 'application/octet-stream';
    if (!knownType && EXT_TYPES[ext] === undefined) return null; // cannot tell here: filestage will
    var what = knownType ? (TYPE_NAMES[type] ? TYPE_NAMES[type] + ' (' + type + ')' : type) : '.' + ext;
    return { title: 'This type of file is not accepted here.', text: '“' + f.name + '” is ' + what + '; this link takes ' + acceptText() + '. Choose another file.' };
  }

  // ---- state and view ----

  var file = null, upload = null, fatal = false, storing = false, retrying = false;
  // allSent: every byte of the current file reached the server once.
  var allSent = false;
  var samples = [], lastPaint = 0;

  function setPhase(p) {
    app.dataset.phase = p;
    var busy = p === 'uploading' || p === 'paused';
    el.picker.hidden = busy || p === 'done' || fatal;
    if (el.note) el.note.hidden = p !== 'ready';
    el.pause.hidden = p !== 'uploading' || storing;
    el.resume.hidden = p !== 'paused' && !(p === 'error' && upload && !fatal);
    el.resume.textContent = p === 'error' ? 'Try again' : 'Resume';
    if (p === 'ready' || (p === 'error' && !upload)) el.transfer.hidden = true;
  }

  function say(text) {
    el.status.classList.remove('is-error');
    el.status.textContent = text;
  }

  function sayError(title, text, detail) {
    el.status.textContent = '';
    el.status.classList.add('is-error');
    var t = document.createElement('strong');
    t.textContent = title;
    el.status.appendChild(t);
    if (text) el.status.appendChild(document.createTextNode(' ' + text));
    if (detail) {
      var d = document.createElement('span');
      d.className = 'detail';
      d.textContent = detail;
      el.status.appendChild(d);
    }
  }

  function paintProgress(sent, total, force) {
    var now = Date.now();
    samples.push({ t: now, b: sent });
    while (samples.length > 2 && now - samples[0].t > 5000) samples.shift();
    if (!force && now - lastPaint < 200 && sent < total) return;
    lastPaint = now;
    var pct = total > 0 ? Math.floor(sent / total * 100) : 0;
    el.progress.value = pct;
    el.percent.textContent = pct + '%';
    el.size.textContent = humanBytes(sent) + ' of ' + humanBytes(total);
    var first = samples[0], dt = (now - first.t) / 1000;
    var rate = dt >= 0.5 ? (sent - first.b) / dt : 0;
    if (sent >= total) {
      el.speed.textContent = '';
      el.eta.textContent = '';
    } else if (rate > 0) {
      el.speed.textContent = humanBytes(Math.round(rate)) + '/s';
      el.eta.textContent = 'about ' + humanDuration((total - sent) / rate) + ' left';
    } else {
      el.speed.textContent = '';
      el.eta.textContent = '';
    }
  }

  function resetRate() { samples = []; el.speed.textContent = ''; el.eta.textContent = ''; }

  // ---- errors ----

  // errorOf reads what the server said: tusd answers "ERR_CODE: message".
  function errorOf(err) {
    var res = err && err.originalResponse;
    var status = res ? res.getStatus() : 0;
    var body = res ? String(res.getBody() || '').trim() : '';
    var m = /^(ERR_[A-Z_]+):\s*([\s\S]*)$/.exec(body);
    return { status: status, code: m ? m[1] : '', detail: m ? m[2] : body.slice(0, 300) };
  }

  // describe turns a failure into words, and says whether another file may
  // be chosen (pick), the same one tried again (retry), or neither.
  function describe(e) {
    switch (e.code || e.status) {
      case 'ERR_TOO_LARGE': case 413:
        return { pick: true, title: 'This file is too large.', text: 'This link takes at most ' + humanBytes(cfg.maxBytes) + '. Choose a smaller file.' };
      case 'ERR_WRONG_TYPE': case 415:
        var is = /this file is ([^;\s]+)/i.exec(e.detail);
        var takes = cfg.accept.length ? '; this link takes ' + acceptText() : '';
        if (is && file) {
          var t = is[1].toLowerCase();
          return { pick: true, title: 'This type of file is not accepted here.', text: 'By its contents, “' + file.name + '” is ' + (TYPE_NAMES[t] ? TYPE_NAMES[t] + ' (' + t + ')' : t) + takes + '. Choose another file.' };
        }
        return { pick: true, title: 'This type of file is not accepted here.', text: 'filestage judged it by its contents' + takes + '. Choose another file.', detail: e.detail };
      case 'ERR_LINK_USED':
        return { title: 'This link was already used.', text: 'A file was received through it already. Go back to your assistant; ask it for a new link to send another file.' };
      case 'ERR_LINK_EXPIRED':
        return { title: 'This link has expired.', text: 'Ask your assistant for a new link.' };
      case 'ERR_LINK_UNKNOWN': case 404:
        return { title: 'This upload link does not exist (any more).', text: 'Ask your assistant for a new link.' };
      case 410:
        return { title: 'This link can no longer be used.', text: 'Ask your assistant for a new link.', detail: e.detail };
      case 'ERR_STAGE_FAILED':
        return { title: 'The file arrived, but could not be stored.', text: 'Go back to your assistant and ask it for a new link to try again.', detail: e.detail.replace(/^the file arrived but could not be stored:\s*/i, '') };
      case 'ERR_BUSY': case 503:
        return { retry: true, pick: true, title: 'filestage is busy right now.', text: 'Wait a minute, then press Try again: the upload continues where it stopped.' };
      case 0:
        return { retry: true, pick: true, title: 'The connection to filestage was lost.', text: 'Check your connection, then press Try again: the upload continues where it stopped.' };
      default:
        return { retry: true, pick: true, title: 'Sending the file failed.', text: 'Press Try again: the upload continues where it stopped.', detail: 'HTTP ' + e.status + (e.detail ? ': ' + e.detail : '') };
    }
  }

  // linkState reads this link's state from its page, as served now.
  function linkState() {
    return fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      var a = doc.getElementById('app'), d = doc.querySelector('.detail code');
      return a ? { state: a.getAttribute('data-state'), error: d ? d.textContent : '' } : null;
    });
  }

  function fail(d) {
    if (!d.pick && !d.retry) fatal = true;
    if (!d.retry && upload) {
      // Forget it, so that this file is never resumed from where it was
      // refused; the server removes what it had.
      var u = upload;
      upload = null;
      u.abort(true).catch(function () {});
    }
    storing = false;
    sayError(d.title, d.text, d.detail);
    if (!d.retry) el.transfer.hidden = true;
    setPhase('error');
    if (el.input) el.input.value = '';
  }

  // ---- upload ----

  function start(f) {
    var bad = checkFile(f);
    if (bad) { file = null; upload = null; fail({ pick: true, title: bad.title, text: bad.text }); return; }

    file = f;
    storing = false;
    retrying = false;
    allSent = false;
    el.name.textContent = f.name;
    el.size.textContent = humanBytes(f.size);
    el.progress.value = 0;
    el.percent.textContent = '0%';
    resetRate();
    el.transfer.hidden = false;

    var u = new tus.Upload(f, {
      endpoint: cfg.endpoint,
      retryDelays: RETRY_DELAYS,
      metadata: { link: cfg.id, filename: f.name, filetype: f.type || 'application/octet-stream' },
      // tus-js-client's own fingerprint, tied to this link.
      fingerprint: function (file, options) {
        return Promise.resolve(['tus-br', cfg.id, file.name, file.type, file.size, file.lastModified, options.endpoint].join('-'));
      },
      removeFingerprintOnSuccess: true,
      onShouldRetry: function (err, attempt) {
        var e = errorOf(err);
        var retry = e.status === 0 || e.status === 409 || e.status === 423 ||
          (e.status >= 500 && e.code !== 'ERR_STAGE_FAILED');
        if (retry && navigator.onLine !== false) {
          var delay = RETRY_DELAYS[attempt] || 0;
          say(e.code === 'ERR_BUSY'
            ? 'filestage is busy; trying again' + (delay ? ' in ' + humanDuration(delay / 1000) : '') + '…'
            : 'The connection was interrupted; trying again' + (delay ? ' in ' + humanDuration(delay / 1000) : '') + '…');
          resetRate();
          retrying = true;
          return true;
        }
        return false;
      },
      onProgress: function (sent, total) {
        if (u !== upload) return;
        paintProgress(sent, total, false);
        if (sent >= total && !storing) {
          storing = allSent = true;
          el.pause.hidden = true;
          paintProgress(sent, total, true);
          say('All sent; filestage is storing the file…');
        } else if (retrying && sent < total) {
          retrying = false;
          say('Sending “' + f.name + '”…');
        }
      },
      onSuccess: function () { succeed(); },
      onError: function (err) {
        if (u !== upload) return;
        var e = errorOf(err);
        var unsure = e.status === 0 || e.status === 404 || e.status === 409 || e.status === 423 ||
          e.code === 'ERR_LINK_USED' || (e.status >= 500 && e.code !== 'ERR_STAGE_FAILED');
        if (allSent && unsure) {
          // Every byte went out, and then something failed: perhaps only
          // the answer to the last request was lost, and the retry found
          // the upload gone because it was stored. The link's page knows.
          settle(e, Date.now());
          return;
        }
        if (e.status === 0 && navigator.onLine === false) {
          // Offline: wait for the connection, then go on by ourselves.
          resetRate();
          say('You are offline. The upload continues when the connection is back.');
          setPhase('paused');
          window.addEventListener('online', function () {
            if (upload === u && app.dataset.phase === 'paused') resume();
          }, { once: true });
          return;
        }
        fail(describe(e));
      }
    });

    // settle asks the link's page how the upload ended, while filestage
    // may still be storing the file, and says so.
    function settle(e, since) {
      say('All sent; checking that filestage stored the file…');
      linkState().then(function (st) {
        if (u !== upload) return;
        switch (st && st.state) {
          case 'staged': succeed(); return;
          case 'failed': fail(describe({ code: 'ERR_STAGE_FAILED', status: 502, detail: st.error })); return;
          case 'expired': fail(describe({ code: 'ERR_LINK_EXPIRED', status: 410, detail: '' })); return;
          case 'receiving':
            if (Date.now() - since < 120000) { setTimeout(function () { settle(e, since); }, 2000); return; }
        }
        fail(describe(e));
      }, function () { if (u === upload) fail(describe(e)); });
    }

    function succeed() {
      if (u !== upload) return;
      storing = false;
      el.progress.value = 100;
      el.percent.textContent = '100%';
      var lost = !document.activeElement || document.activeElement === document.body || el.transfer.contains(document.activeElement);
      el.transfer.hidden = true;
      el.doneName.textContent = f.name;
      el.doneSize.textContent = '(' + humanBytes(f.size) + ')';
      el.done.hidden = false;
      say('“' + f.name + '” was received. You can go back to your assistant.');
      setPhase('done');
      if (lost) $('done-title').focus();
      clearInterval(ticker);
    }

    upload = u;
    var hadFocus = el.picker.contains(document.activeElement);
    setPhase('uploading');
    if (hadFocus) el.pause.focus();

    // Resume what an earlier visit sent of the same file through this link.
    u.findPreviousUploads().then(function (prev) {
      var mine = prev.filter(function (p) {
        return p.uploadUrl && p.uploadUrl.slice(-cfg.id.length - 1) === '/' + cfg.id;
      }).sort(function (a, b) { return String(b.creationTime).localeCompare(String(a.creationTime)); });
      if (mine.length) u.resumeFromPreviousUpload(mine[0]);
      if (u !== upload || app.dataset.phase !== 'uploading') return;
      say((mine.length ? 'Resuming “' : 'Sending “') + f.name + '”…');
      u.start();
    }, function () {
      if (u !== upload || app.dataset.phase !== 'uploading') return;
      say('Sending “' + f.name + '”…');
      u.start();
    });
  }

  function pause() {
    if (!upload || app.dataset.phase !== 'uploading' || storing) return;
    upload.abort();
    resetRate();
    setPhase('paused');
    say('Paused at ' + el.percent.textContent + '. Press Resume to continue.');
    el.resume.focus();
  }

  function resume() {
    if (app.dataset.phase === 'error' && file) { start(file); return; } // Try again
    if (!upload || app.dataset.phase !== 'paused') return;
    resetRate();
    setPhase('uploading');
    say('Resuming “' + file.name + '”…');
    upload.start();
    el.pause.focus();
  }

  // ---- picking ----

  function pick(files) {
    if (fatal || app.dataset.phase === 'uploading' || app.dataset.phase === 'paused' || app.dataset.phase === 'done') return;
    if (!files || files.length === 0) return;
    if (files.length > 1) { fail({ pick: true, title: 'Drop one file only.', text: 'This link takes a single file.' }); return; }
    el.done.hidden = true;
    start(files[0]);
  }

  function openPicker() {
    if (el.drop.getAttribute('aria-disabled') === 'true' || el.picker.hidden) return;
    el.input.click();
  }

  // ---- expiry ----

  var ticker = 0;
  function tick() {
    if (!cfg.expires) return;
    var left = cfg.expires - Date.now();
    // By this device's clock, which may be off: filestage decides.
    if (left <= 0) {
      el.expiresIn.textContent = ' (expired)';
      clearInterval(ticker);
      return;
    }
    var min = Math.floor(left / 60000);
    el.expiresIn.textContent = min < 1 ? ' (in less than a minute)' : ' (in ' + humanDuration(left / 1000) + ')';
  }

  // ---- wiring ----

  function init() {
    if (el.time && cfg.expires) {
      el.time.textContent = new Date(cfg.expires).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    }
    if (cfg.maxBytes > 0) $('max-text').textContent = humanBytes(cfg.maxBytes);
    if (cfg.accept.length) $('accept-text').textContent = acceptText();
    tick();
    ticker = setInterval(tick, 15000);

    if (typeof tus === 'undefined' || !tus.isSupported) {
      fail({ title: 'This browser cannot send the file from this page.', text: 'Try another, up-to-date browser.' });
      return;
    }

    el.input.disabled = false;
    el.drop.removeAttribute('aria-disabled');

    el.input.addEventListener('change', function () { pick(el.input.files); });
    el.drop.addEventListener('click', openPicker);
    el.drop.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter') { ev.preventDefault(); openPicker(); }
      else if (ev.key === ' ' || ev.key === 'Spacebar') ev.preventDefault();
    });
    el.drop.addEventListener('keyup', function (ev) {
      if (ev.key === ' ' || ev.key === 'Spacebar') { ev.preventDefault(); openPicker(); }
    });
    var depth = 0;
    el.drop.addEventListener('dragenter', function (ev) { ev.preventDefault(); depth++; el.drop.classList.add('is-over'); });
    el.drop.addEventListener('dragleave', function () { if (--depth <= 0) { depth = 0; el.drop.classList.remove('is-over'); } });
    el.drop.addEventListener('dragover', function (ev) { ev.preventDefault(); if (ev.dataTransfer) ev.dataTransfer.dropEffect = 'copy'; });
    el.drop.addEventListener('drop', function (ev) {
      ev.preventDefault();
      depth = 0;
      el.drop.classList.remove('is-over');
      if (ev.dataTransfer) pick(ev.dataTransfer.files);
    });
    // A file dropped beside the zone must not replace the page.
    document.addEventListener('dragover', function (ev) { ev.preventDefault(); });
    document.addEventListener('drop', function (ev) { ev.preventDefault(); });

    el.pause.addEventListener('click', pause);
    el.resume.addEventListener('click', resume);

    setPhase('ready');
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
