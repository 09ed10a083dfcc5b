package dev.kiln.image;

import java.util.Locale;

/** Parses and prints sizes: plain bytes or K/M/G/T (powers of 1024), with an optional "iB"/"B". */
public final class Sizes {
    private Sizes() {}

    public static long parse(String s) {
        if (s == null) {
            throw new IllegalArgumentException("missing size");
        }
        String t = s.trim().toUpperCase(Locale.ROOT);
        if (t.endsWith("IB")) {
            t = t.substring(0, t.length() - 2);
        } else if (t.endsWith("B") && t.length() > 1 && Character.isLetter(t.charAt(t.length() - 2))) {
            t = t.substring(0, t.length() - 1);
        } else if (t.endsWith("B")) {
            t = t.substring(0, t.length() - 1);
        }
        long mult = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> mult = 1L << 10;
                case 'M' -> mult = 1L << 20;
                case 'G' -> mult = 1L << 30;
                case 'T' -> mult = 1L << 40;
                default -> mult = 1;
            }
        }
        if (mult != 1) {
            t = t.substring(0, t.length() - 1);
        }
        try {
            long v = Long.parseLong(t.trim());
            if (v <= 0) {
                throw new IllegalArgumentException("size must be positive: " + s);
            }
            return Math.multiplyExact(v, mult);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException("not a size: '" + s + "'; use bytes or a K/M/G/T suffix, e.g. 150M");
        }
    }

    public static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        int u = 0;
        while (u < units.length - 1 && bytes >> (10 * u) >= 1024) {
            u++;
        }
        if (u == 0) {
            return bytes + " B";
        }
        // Tenths rounded half up, as "%.1f" would (a power of two divides exactly), without the
        // Formatter: its first float loads the locale's decimal symbols, ~20 ms of a small build.
        long unit = 1L << (10 * u);
        long tenths = bytes / unit * 10 + ((bytes % unit) * 10 + unit / 2) / unit;
        return tenths / 10 + "." + tenths % 10 + " " + units[u];
    }
}
