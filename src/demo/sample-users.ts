/**
 * The people of `stsgate demo`'s development identity provider. Their claims exercise the rules of
 * examples/demo.yaml (whose `tests:` list the same claims): one gets every role, one some, one none.
 */
import type { DevelopmentUser } from './development-idp.js';

/** Sample users by the name on the provider's login page. */
export const SAMPLE_USERS: Readonly<Record<string, DevelopmentUser>> = Object.freeze({
  ada: {
    sub: 'demo-ada',
    email: 'ada@example.com',
    email_verified: true,
    name: 'Ada (platform team)',
    groups: ['platform', 'engineering'],
    description: 'platform team: admin, developer and reader',
  },
  devon: {
    sub: 'demo-devon',
    email: 'devon@example.com',
    email_verified: true,
    name: 'Devon (engineer)',
    groups: ['engineering'],
    description: 'engineer: developer and reader',
  },
  casey: {
    sub: 'demo-casey',
    email: 'casey@contractor.example',
    // The rules want a verified email: casey is refused, and the page says which account it saw.
    email_verified: false,
    name: 'Casey (contractor)',
    groups: ['engineering'],
    description: 'contractor with an unverified email: denied',
  },
});
