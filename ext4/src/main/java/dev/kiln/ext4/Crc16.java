package dev.kiln.ext4;

/** The CRC16 (polynomial 0x8005, reflected) that uninit_bg group descriptors use. */
final class Crc16 {
    private static final int[] TABLE = new int[256];

    static {
        for (int i = 0; i < 256; i++) {
            int c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) != 0 ? (c >>> 1) ^ 0xA001 : c >>> 1;
            }
            TABLE[i] = c;
        }
    }

    private Crc16() {}

    static int update(int crc, byte[] b, int off, int len) {
        for (int i = 0; i < len; i++) {
            crc = (crc >>> 8) ^ TABLE[(crc ^ b[off + i]) & 0xFF];
        }
        return crc & 0xFFFF;
    }
}
