package dev.kiln.ext4;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * File names are bytes in ext4 (and in tar, and on Linux), not text. kiln carries them in Java
 * strings so that every byte string round-trips exactly: valid UTF-8 decodes as usual, and each
 * byte that is not part of valid UTF-8 becomes the lone surrogate U+DC80 + byte (as Python's
 * {@code surrogateescape} does), which valid text never contains. So two names that differ only
 * in invalid bytes stay two names, and writing a name back gives the bytes that were read.
 */
public final class Names {
    private static final char ESCAPE_BASE = 0xDC00;

    private Names() {}

    /**
     * The name for these bytes.
     *
     * @param b a name's bytes
     * @return the name, bytes that are not UTF-8 carried as lone surrogates
     */
    public static String decode(byte[] b) {
        return decode(b, 0, b.length);
    }

    /**
     * The name for {@code len} bytes of {@code b} from {@code off}.
     *
     * @param b a buffer
     * @param off where the name starts
     * @param len its length in bytes
     * @return the name, bytes that are not UTF-8 carried as lone surrogates
     */
    public static String decode(byte[] b, int off, int len) {
        boolean ascii = true;
        for (int i = off; i < off + len; i++) {
            if (b[i] < 0) {
                ascii = false;
                break;
            }
        }
        if (ascii) {
            return new String(b, off, len, StandardCharsets.ISO_8859_1);
        }
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(b, off, len);
        CharBuffer out = CharBuffer.allocate(len * 2);
        while (true) {
            CoderResult r = d.decode(in, out, true);
            if (r.isUnderflow()) {
                break;
            }
            if (r.isError()) {
                for (int i = 0; i < r.length(); i++) {
                    out.put((char) (ESCAPE_BASE + (in.get() & 0xFF)));
                }
            } else {
                throw new IllegalStateException("a name decoded to more than twice its bytes");
            }
        }
        d.flush(out);
        return out.flip().toString();
    }

    /**
     * The bytes of a name (the inverse of {@link #decode}).
     *
     * @param s a name from {@link #decode} or any string
     * @return its bytes, the original ones for carried bytes
     */
    public static byte[] encode(String s) {
        boolean plain = true;
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) >= 0x80) {
                plain = false;
                break;
            }
        }
        if (plain) {
            return s.getBytes(StandardCharsets.ISO_8859_1);
        }
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(s.length() * 3);
        int i = 0;
        while (i < s.length()) {
            char c = s.charAt(i);
            if (isEscape(s, i)) {
                out.write(c - ESCAPE_BASE);
                i++;
                continue;
            }
            int j = i;
            while (j < s.length() && !isEscape(s, j)) {
                j++;
            }
            byte[] run = s.substring(i, j).getBytes(StandardCharsets.UTF_8);
            out.write(run, 0, run.length);
            i = j;
        }
        return out.toByteArray();
    }

    /** Whether the char at {@code i} is an escaped byte: a lone low surrogate in U+DC80..U+DCFF. */
    private static boolean isEscape(String s, int i) {
        char c = s.charAt(i);
        return c >= ESCAPE_BASE + 0x80 && c <= ESCAPE_BASE + 0xFF && (i == 0 || !Character.isHighSurrogate(s.charAt(i - 1)));
    }

    /**
     * Whether the name holds bytes that are not UTF-8.
     *
     * @param s a name
     * @return whether it carries bytes that are not UTF-8
     */
    public static boolean hasRawBytes(String s) {
        for (int i = 0; i < s.length(); i++) {
            if (isEscape(s, i)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The name for a terminal or a message: bytes that are not UTF-8 as {@code \xNN}, control
     * characters as {@code \n}, {@code \t} or {@code \xNN}, a backslash as {@code \\}.
     *
     * @param s a name
     * @return it with carried bytes and control characters as \\xNN
     */
    public static String printable(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String rep = null;
            if (isEscape(s, i)) {
                rep = String.format("\\x%02x", c - ESCAPE_BASE);
            } else if (c == '\\') {
                rep = "\\\\";
            } else if (c == '\n') {
                rep = "\\n";
            } else if (c == '\t') {
                rep = "\\t";
            } else if (c < 0x20 || c == 0x7F) {
                rep = String.format("\\x%02x", (int) c);
            }
            if (rep != null && b == null) {
                b = new StringBuilder(s.substring(0, i));
            }
            if (b != null) {
                b.append(rep != null ? rep : String.valueOf(c));
            }
        }
        return b == null ? s : b.toString();
    }
}
