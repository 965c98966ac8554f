/**
 * Redis Cluster key slots, computed here so the store can group multi-key operations by slot before
 * sending them (a multi-key command across slots fails with CROSSSLOT). Redis Cluster spec, "Keys distribution
 * model": HASH_SLOT = CRC16(key) mod 16384, CRC16 being XMODEM (poly 0x1021, init 0), hashing only the hash
 * tag when the key has a non-empty `{...}`.
 */

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The Cluster hash slot (0..16383) of a full (prefixed) key. */
export function clusterKeySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  // Spec: the tag is between the first '{' and the first '}' after it, and only when it is non-empty.
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % 16384;
  }
  return crc16(bytes) % 16384;
}

/** Groups items by the slot of their key, keeping the original order inside each group. */
export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = clusterKeySlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}
