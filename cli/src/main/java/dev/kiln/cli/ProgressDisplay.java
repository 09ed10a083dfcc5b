package dev.kiln.cli;

import dev.kiln.ext4.Ext4Writer;
import dev.kiln.image.Build;
import dev.kiln.image.Sizes;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * Progress on stderr: one line per stage normally; on a terminal, a line that updates in place
 * with the content and entries streamed so far; nothing with --quiet.
 */
final class ProgressDisplay implements Build.Progress, AutoCloseable {
    private final PrintWriter err;
    private final boolean terminal;
    private volatile Ext4Writer writer;
    private volatile dev.kiln.image.Source source;
    private volatile String stage = "";
    private Thread ticker;

    ProgressDisplay(PrintWriter err, boolean terminal) {
        this.err = err;
        this.terminal = terminal;
    }

    @Override
    public void source(int index, int total, dev.kiln.image.Source s, Ext4Writer w) {
        this.writer = w;
        this.source = s;
        this.stage = "[" + index + "/" + total + "] " + s.describe();
        if (!terminal) {
            err.println("kiln: " + stage);
            err.flush();
            return;
        }
        if (ticker == null) {
            ticker = new Thread(this::tick, "kiln-progress");
            ticker.setDaemon(true);
            ticker.start();
        }
    }

    @Override
    public void finishing(String what) {
        stage = what;
        source = null;
        if (!terminal) {
            err.println("kiln: " + what);
            err.flush();
        }
    }

    private void tick() {
        String spin = "|/-\\";
        int i = 0;
        while (!Thread.currentThread().isInterrupted()) {
            Ext4Writer w = writer;
            dev.kiln.image.Source s = source;
            double f = s == null ? -1 : s.fraction();
            String lead = f < 0 ? String.valueOf(spin.charAt(i++ % 4)) : bar(f);
            String line = String.format(Locale.ROOT, "\r%s %s: %s, %,d entries", lead, stage,
                    w == null ? "0 B" : Sizes.human(w.contentBytes()), w == null ? 0 : w.entries());
            if (line.length() > 120) {
                line = line.substring(0, 120);
            }
            err.print(line + "\u001b[K");
            err.flush();
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /** A 20-column bar with the percentage, e.g. {@code [=========>          ]  47%}. */
    static String bar(double f) {
        int width = 20;
        int done = (int) Math.round(f * width);
        StringBuilder b = new StringBuilder("[");
        for (int k = 0; k < width; k++) {
            b.append(k < done ? '=' : k == done ? '>' : ' ');
        }
        return b.append(String.format(Locale.ROOT, "] %3d%%", Math.round(f * 100))).toString();
    }

    @Override
    public void close() {
        if (ticker != null) {
            ticker.interrupt();
            try {
                ticker.join(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            err.print("\r\u001b[K");
            err.flush();
        }
    }
}
