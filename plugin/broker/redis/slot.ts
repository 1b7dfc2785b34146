/**
 * Redis Cluster's key slot: CRC16 (XMODEM) of the key's UTF-8 bytes, or of its hash tag (the
 * part between the first `{` and the next `}`, when not empty), modulo 16384. The broker groups
 * the names one script call touches by slot, since a call must stay in one slot on a cluster.
 * Computed here, not taken from ioredis' dependency: ioredis is an optional peer.
 */
export const slotCount = 16384

function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

const encoder = new TextEncoder()

export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) return crc16(encoder.encode(key.slice(open + 1, close))) % slotCount
  }
  return crc16(encoder.encode(key)) % slotCount
}
