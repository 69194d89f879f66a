import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { MountsModel } from '../model';
import { AGENT_DOWN } from '../tokens';
import { connector, FakeEventSource, FakeRequester, flush, ManualTimers } from './fakes';

describe('MountsModel', () => {
  let req: FakeRequester;
  let timers: ManualTimers;
  let model: MountsModel;

  beforeEach(() => {
    FakeEventSource.all = [];
    req = new FakeRequester();
    timers = new ManualTimers();
    req.routes.push((p, m) =>
      p === 'api/v1/connectors' && m === 'GET' ? { connectors: [connector('b'), connector('a')] } : undefined
    );
    model = new MountsModel({
      requester: req,
      eventSource: url => new FakeEventSource(url),
      timers,
      reconnectMin: 1000,
      reconnectMax: 8000
    });
  });

  afterEach(() => model.dispose());

  it('sorts by the name shown, not by id', async () => {
    await flush();
    const es = FakeEventSource.all[0];
    es.open();
    es.send(JSON.stringify(connector('zz', { name: 'Alpha' })));
    es.send(JSON.stringify(connector('aa', { name: 'Zulu' })));
    es.send(JSON.stringify(connector('a', { name: 'Name a 10' })));
    es.send(JSON.stringify(connector('b', { name: 'Name a 9' })));
    expect(model.connectors.map(c => c.name)).toEqual(['Alpha', 'Name a 9', 'Name a 10', 'Zulu']);
  });

  it('loads the connectors sorted by id', async () => {
    await flush();
    expect(model.status).toBe('ok');
    expect(model.connectors.map(c => c.id)).toEqual(['a', 'b']);
    expect(FakeEventSource.all[0].url).toBe('http://jupyter/s3mounts/api/v1/events');
  });

  it('applies events: state changes, new connectors, deletions, keep-alives', async () => {
    await flush();
    const es = FakeEventSource.all[0];
    es.open();
    expect(model.live).toBe(true);
    let changes = 0;
    model.changed.connect(() => changes++);
    es.send(JSON.stringify(connector('a', { state: 'mounting' })));
    expect(model.connector('a')!.state).toBe('mounting');
    es.send(JSON.stringify(connector('a', { state: 'mounted', actions: null })));
    expect(model.connector('a')!.state).toBe('mounted');
    // An event without actions keeps the caller's actions.
    expect(model.connector('a')!.actions).toContain('activate');
    es.send(JSON.stringify(connector('0new', { state: 'error', error: 'bad endpoint' })));
    expect(model.connectors.map(c => c.id)).toEqual(['0new', 'a', 'b']);
    expect(model.connector('0new')!.error).toBe('bad endpoint');
    es.send(JSON.stringify({ ...connector('b'), deleted: true }));
    expect(model.connectors.map(c => c.id)).toEqual(['0new', 'a']);
    es.send(': keep-alive');
    es.send('not json');
    expect(changes).toBe(4);
  });

  it('reconnects the event stream with exponential backoff, capped', async () => {
    await flush();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const es = FakeEventSource.all[FakeEventSource.all.length - 1];
      es.fail();
      expect(es.closed).toBe(true);
      expect(model.live).toBe(false);
      delays.push(timers.pending[0].ms);
      timers.runAll();
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(FakeEventSource.all.length).toBe(7);
    // A successful open resets the backoff and re-reads the whole list.
    const calls = req.calls.length;
    FakeEventSource.all[6].open();
    expect(model.reconnectDelay).toBe(0);
    await flush();
    expect(req.calls.length).toBe(calls + 1);
    FakeEventSource.all[6].fail();
    expect(timers.pending[0].ms).toBe(1000);
  });

  it('reports the agent down, and recovers', async () => {
    await flush();
    req.down = true;
    await model.refresh();
    expect(model.status).toBe('down');
    expect(model.message).toBe(AGENT_DOWN);
    req.down = false;
    await model.refresh();
    expect(model.status).toBe('ok');
    expect(model.message).toBe('');
  });

  it('activate applies the answer at once', async () => {
    await flush();
    req.routes.push((p, m) =>
      p === 'api/v1/connectors/a/activate' && m === 'POST' ? connector('a', { state: 'mounted' }) : undefined
    );
    const c = await model.activate('a');
    expect(c.state).toBe('mounted');
    expect(model.connector('a')!.state).toBe('mounted');
  });

  it('encodes ids and paths in URLs', async () => {
    await flush();
    req.routes.push(() => ({ ok: true }));
    await model.refreshPath('a b', 'dir/x y&z');
    expect(req.calls.at(-1)).toEqual({
      path: 'api/v1/connectors/a%20b/refresh?path=dir%2Fx%20y%26z',
      method: 'POST'
    });
  });
});
