// The try-it page: builds one input from the form, posts it to the
// model's v1 endpoint and shows the prediction or the error.
(function () {
  'use strict';
  var form = document.getElementById('predict-form');
  var result = document.getElementById('result');
  var status = document.getElementById('status');
  var errorBox = document.getElementById('error');

  function labelOf(el) {
    var l = form.querySelector('label[for="' + el.id + '"]');
    return l ? l.firstChild.textContent.trim() : el.name;
  }

  function fail(el, msg) {
    el.setAttribute('aria-invalid', 'true');
    var e = new Error(msg);
    e.field = el;
    return e;
  }

  function number(el, raw, integer) {
    var n = Number(raw);
    if (raw.trim() === '' || !isFinite(n)) {
      throw fail(el, labelOf(el) + ': give a number, not "' + raw + '"');
    }
    if (integer && !Number.isInteger(n)) {
      throw fail(el, labelOf(el) + ': give a whole number, not ' + raw);
    }
    return n;
  }

  // value returns the JSON value of one form control, or undefined to
  // leave an optional field out.
  function value(el) {
    var kind = el.dataset.kind;
    var raw = el.value;
    el.removeAttribute('aria-invalid');
    if (kind === 'boolean') {
      return el.checked;
    }
    if (raw.trim() === '' && el.dataset.optional === 'true') {
      return undefined;
    }
    switch (kind) {
      case 'integer':
        return number(el, raw, true);
      case 'number':
        return number(el, raw, false);
      case 'numbers':
      case 'integers':
        return raw.split(/[\s,]+/).filter(function (s) { return s !== ''; }).map(function (s) {
          return number(el, s, kind === 'integers');
        });
      case 'json':
        try {
          return JSON.parse(raw);
        } catch (e) {
          throw fail(el, labelOf(el) + ': not JSON: ' + e.message);
        }
      default:
        return raw;
    }
  }

  function showError(msg) {
    status.textContent = '';
    result.textContent = '';
    errorBox.textContent = msg;
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    errorBox.textContent = '';
    result.textContent = '';
    var controls = form.querySelectorAll('[data-kind]');
    var instance;
    try {
      if (form.dataset.record === 'true') {
        instance = {};
        controls.forEach(function (el) {
          var v = value(el);
          if (v !== undefined) {
            instance[el.name] = v;
          }
        });
      } else {
        instance = value(controls[0]);
      }
    } catch (e) {
      showError(e.message);
      if (e.field) {
        e.field.focus();
      }
      return;
    }
    status.textContent = 'Predicting…';
    fetch(form.dataset.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ instances: [instance] })
    }).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (body) {
        if (!resp.ok) {
          showError((body && body.error) || ('The server answered ' + resp.status + '.'));
          return;
        }
        result.textContent = JSON.stringify(body.predictions[0], null, 2);
        status.textContent = 'Done.';
      });
    }).catch(function (e) {
      showError('The request failed: ' + e.message);
    });
  });
})();
