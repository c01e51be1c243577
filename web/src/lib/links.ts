/** The links this app hands out. Secrets travel in the URL fragment, which never reaches a server. */
export function shareUrl(id: string): string {
  return `${window.location.origin}/m/${encodeURIComponent(id)}`;
}

/** A friend's own link: opening it on any device signs them back in as themselves. */
export function personalUrl(id: string, participantToken: string): string {
  return `${shareUrl(id)}#${new URLSearchParams({ p: participantToken }).toString()}`;
}

/** The organizer's link: admin token plus the organizer's own participant. */
export function adminUrl(id: string, t: { adminToken?: string; participantId?: string; participantToken?: string }) {
  const q = new URLSearchParams();
  if (t.adminToken) q.set('admin', t.adminToken);
  if (t.participantId) q.set('pid', t.participantId);
  if (t.participantToken) q.set('pt', t.participantToken);
  return `${shareUrl(id)}#${q.toString()}`;
}

export interface HashTokens {
  adminToken?: string;
  participantId?: string;
  participantToken?: string;
  /** A personal link (`#p=`) whose participant id is still to be asked for. */
  personal?: boolean;
}

/** Reads `#admin=…&pid=…&pt=…` (organizer link) or `#p=…` (personal link). */
export function parseHash(hash: string): HashTokens {
  const q = new URLSearchParams(hash.replace(/^#/, ''));
  const out: HashTokens = {};
  if (q.get('admin')) out.adminToken = q.get('admin')!;
  if (q.get('pid')) out.participantId = q.get('pid')!;
  if (q.get('pt')) out.participantToken = q.get('pt')!;
  if (q.get('p')) {
    out.participantToken = q.get('p')!;
    out.personal = true;
  }
  return out;
}
