// A `wx` for Node: storage in a Map, wx.login handing out codes, wx.request answered by either a
// script of routes (unit tests) or real HTTP with fetch (the integration test). Callbacks run
// asynchronously, as WeChat's do.

export function makeWx({ routes = {}, codes, fetchBase } = {}) {
  const storage = new Map();
  const requests = [];
  let issued = 0;
  const later = (fn) => setTimeout(fn, 1);
  return {
    requests,
    storage,
    loginFails: false,
    login(options) {
      later(() => {
        if (this.loginFails) { options.fail({ errMsg: 'login:fail' }); return; }
        issued += 1;
        Promise.resolve(codes ? codes() : `js-code-${issued}`)
          .then((code) => options.success({ code }), () => options.fail({ errMsg: 'login:fail' }));
      });
    },
    request(options) {
      const url = new URL(options.url);
      const request = {
        method: options.method, path: url.pathname, header: options.header || {},
        data: options.data,
      };
      requests.push(request);
      if (fetchBase !== undefined) {
        fetch(options.url, { method: options.method, headers: options.header, body: options.data })
          .then(async (res) => options.success({
            statusCode: res.status, data: await res.text(),
            header: Object.fromEntries(res.headers.entries()),
          }))
          .catch((error) => options.fail({ errMsg: `request:fail ${error.message}` }));
        return;
      }
      const handler = routes[`${options.method} ${url.pathname}`];
      later(() => {
        if (!handler) { options.success({ statusCode: 404, data: { error: 'not_found' } }); return; }
        const answer = handler(request);
        if (answer === 'fail') { options.fail({ errMsg: 'request:fail timeout' }); return; }
        options.success({ statusCode: 200, header: {}, ...answer });
      });
    },
    getStorageSync(key) { return storage.has(key) ? storage.get(key) : ''; },
    setStorageSync(key, value) { storage.set(key, JSON.parse(JSON.stringify(value))); },
    removeStorageSync(key) { storage.delete(key); },
  };
}

export function form(request) {
  return Object.fromEntries(new URLSearchParams(request.data));
}
