// The data-directory facts are facts like any other (src/fact.ts: a read-only command plus a pure
// parser, read with host.fact and cached per step). What they share: the move's longer default
// deadline (a tree walk or a config read on a loaded host), and a parse error that names the host
// and the fact, since a move reads the same fact on many hosts.
import { ChopsError } from '../../src/errors.js';
import { type Fact, defineFact } from '../../src/fact.js';

export function defineDatadirFact<T, A = void>(fact: Fact<T, A>): Fact<T, A> {
  return defineFact({
    ...fact,
    timeoutMs: fact.timeoutMs ?? 120_000,
    parse: (out, arg, host) => {
      try {
        return fact.parse(out, arg, host);
      } catch (err) {
        throw new ChopsError(`${host.name}: fact "${fact.name}": ${(err as Error).message}`);
      }
    },
  });
}
