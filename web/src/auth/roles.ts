// What the console offers to whom: mirrors docs/roles.md. The API stays the authority (a
// refused call shows its 403); this only hides what a role can never use.
import type { Me } from '../api/types';

export type Caller = Me | null;

const is = (me: Caller, ...roles: string[]) => !!me && roles.includes(me.role);

/** Unknown caller (an older server without /me): offer everything, let the API decide. */
const unknown = (me: Caller) => me === null;

export const can = {
  requestProducts: (me: Caller) => unknown(me) || is(me, 'requester', 'owner', 'admin'),
  /** May apply/delete products of `team`. */
  writeProduct: (me: Caller, team: string) =>
    unknown(me) || is(me, 'admin') || (is(me, 'requester', 'owner') && me?.team === team),
  verifyProduct: (me: Caller, team: string) =>
    unknown(me) || is(me, 'admin', 'approver') || (is(me, 'requester', 'owner') && me?.team === team),
  approve: (me: Caller) => unknown(me) || is(me, 'owner', 'approver', 'admin'),
  readAudit: (me: Caller) => unknown(me) || is(me, 'admin', 'auditor'),
  credentials: (me: Caller, team: string) =>
    unknown(me) || is(me, 'admin') || (is(me, 'owner') && me?.team === team),
  /** Admins may act for any team; everyone else for their own. */
  anyTeam: (me: Caller) => unknown(me) || is(me, 'admin'),
};
