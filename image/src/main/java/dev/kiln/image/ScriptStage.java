package dev.kiln.image;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code --script FILE}: the assembled root is staged in a temporary directory and the script
 * runs chrooted there, as Nex ran its setup in a container — as root, or inside an
 * unprivileged user namespace ({@code unshare -r}) otherwise. The staged tree then becomes the
 * image. Owners recorded in the assembled root are kept; files the script creates belong to
 * root; device nodes an unprivileged stage could not create are carried over from the
 * assembled root.
 */
public final class ScriptStage implements Source {
    private final List<Source> sources;
    private final Ext4Options stageOptions;
    private final Path script;
    private final Path work;
    private final PrintStream log;

    public ScriptStage(List<Source> sources, Ext4Options stageOptions, Path script, Path work, PrintStream log) {
        this.sources = List.copyOf(sources);
        this.stageOptions = stageOptions;
        this.script = script;
        this.work = work;
        this.log = log;
    }

    @Override
    public String describe() {
        return "script " + script;
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        if (!Files.isRegularFile(script)) {
            throw new InvalidSourceException(script + ": no such script; give the path of a shell script to --script");
        }
        Path dir = Files.createTempDirectory(work, ".kiln-stage-");
        Build.track(dir);
        try {
            Path assembled = dir.resolve("assembled.ext4");
            try (Ext4Writer stage = Ext4Writer.create(assembled, stageOptions)) {
                for (Source s : sources) {
                    s.applyTo(stage);
                }
            }
            Path root = Files.createDirectory(dir.resolve("root"));
            try (Ext4Reader r = Ext4Reader.open(assembled)) {
                DirExport.write(r, root);
                runScript(root);
                boolean rootUser = DirExport.isRoot();
                new DirSource(root, (p, u, g) -> {
                    long ino = r.lookupPath(p, false);
                    if (ino != 0) {
                        FileStat st = r.stat(ino);
                        return new long[] {st.uid(), st.gid()};
                    }
                    return rootUser ? new long[] {u, g} : new long[] {0, 0};
                }).applyTo(w);
                if (!rootUser) {
                    restoreSpecials(r, w);
                }
            }
        } finally {
            deleteTree(dir);
            Build.untrack(dir);
        }
    }

    private void runScript(Path root) throws IOException {
        if (!Files.exists(root.resolve("bin/sh"), LinkOption.NOFOLLOW_LINKS)) {
            throw new InvalidSourceException(script + ": the assembled root has no /bin/sh to run the script in");
        }
        Path inside = root.resolve(".kiln-script");
        Files.copy(script, inside);
        List<String> cmd = new ArrayList<>();
        if (!DirExport.isRoot()) {
            cmd.addAll(List.of("unshare", "--map-root-user"));
        }
        cmd.addAll(List.of("chroot", root.toString(), "/bin/sh", "/.kiln-script"));
        Process p;
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
            pb.environment().put("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            p = pb.start();
        } catch (IOException e) {
            throw new InvalidSourceException(script + ": cannot run the script (" + e.getMessage() + "); --script needs "
                    + "root (chroot) or unprivileged user namespaces (unshare)");
        }
        p.getOutputStream().close();
        p.getInputStream().transferTo(log);
        int code;
        try {
            if (!p.waitFor(3600, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new InvalidSourceException(script + ": still running after an hour; stopped");
            }
            code = p.exitValue();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        Files.deleteIfExists(inside);
        if (code != 0) {
            throw new InvalidSourceException(script + ": exited with status " + code
                    + (DirExport.isRoot() ? "" : " (if chroot or unshare failed: --script needs root or user namespaces)"));
        }
    }

    /** Devices and sockets cannot be made without root; take them from the assembled root. */
    private static void restoreSpecials(Ext4Reader r, Ext4Writer w) throws IOException {
        r.walk((p, st) -> {
            if (w.exists(p)) {
                return;
            }
            int slash = p.lastIndexOf('/');
            String parent = slash <= 0 ? "/" : p.substring(0, slash);
            if (!w.isDirectory(parent)) {
                return;
            }
            Metadata md = new Metadata(st.mode(), st.uid(), st.gid(), st.atime(), st.mtime(), st.ctime(), st.crtime(),
                    r.xattrs(st.ino()));
            switch (st.type()) {
                case CHAR_DEVICE -> w.charDevice(p, md, st.major(), st.minor());
                case BLOCK_DEVICE -> w.blockDevice(p, md, st.major(), st.minor());
                case SOCKET -> w.socket(p, md);
                default -> { }
            }
        });
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                Files.delete(f);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
