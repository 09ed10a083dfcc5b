package dev.kiln.image;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.Metadata;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The helper process of {@link ScriptStage}, started inside its namespaces (where it is root,
 * and PID 1): exports the assembled image into the staging directory, mounts what the scripts
 * need, runs them, unmounts, and reads the result back into an image. Not an API.
 */
public final class StageMain {
    private final Properties spec;
    private final Path root;
    private final Path stage;
    private final PrintStream out = System.out;
    /** Each exported path's inode number and change time, to tell what the scripts touched. */
    private final Map<String, long[]> exported = new HashMap<>();

    private StageMain(Properties spec, Path stage) {
        this.spec = spec;
        this.stage = stage;
        this.root = Path.of(spec.getProperty("root"));
    }

    public static void main(String[] args) throws IOException {
        Path specFile = Path.of(args[0]);
        Properties spec = new Properties();
        try (var in = Files.newBufferedReader(specFile)) {
            spec.load(in);
        }
        StageMain m = new StageMain(spec, specFile.getParent());
        Properties status = new Properties();
        try {
            m.run(status);
        } catch (InvalidSourceException e) {
            status.setProperty("result", "error");
            status.setProperty("message", e.getMessage());
        } catch (IOException | RuntimeException e) {
            status.setProperty("result", "error");
            status.setProperty("message", String.valueOf(e.getMessage() != null ? e.getMessage() : e));
        } finally {
            if (!m.mounted()) {
                Build.deleteTree(m.root);
            }
        }
        try (var w = Files.newBufferedWriter(m.stage.resolve("status.properties"))) {
            status.store(w, null);
        }
        System.out.flush();
        // PID 1 of its namespace: ending it ends whatever the scripts left running.
        Runtime.getRuntime().halt(0);
    }

    /** Whether anything is still mounted under the staged root (then it is left for the namespace's end). */
    private boolean mounted() {
        try {
            String prefix = " " + root.toAbsolutePath() + "/";
            return Files.readAllLines(Path.of("/proc/self/mounts")).stream().anyMatch(l -> l.contains(prefix));
        } catch (IOException e) {
            return true;
        }
    }

    private void run(Properties status) throws IOException {
        try (Ext4Reader assembled = Ext4Reader.open(Path.of(spec.getProperty("assembled")))) {
            Files.createDirectory(root);
            DirExport.write(assembled, root, true);
            record();
            List<String> scripts = new ArrayList<>();
            for (int i = 0; spec.containsKey("script." + i); i++) {
                scripts.add(spec.getProperty("script." + i));
            }
            if (!Files.exists(root.resolve("bin/sh"), LinkOption.NOFOLLOW_LINKS)) {
                throw new InvalidSourceException("the assembled root has no /bin/sh to run the script with; "
                        + "choose a base with a shell or add one with --add");
            }
            Path mounts = stage.resolve("mounts.sh");
            Files.writeString(mounts, MOUNTS);
            shell(List.of("/bin/sh", mounts.toString(), "up", root.toString(), stage.toString()), "preparing /proc, /dev, "
                    + "/sys and /etc/resolv.conf for the script");
            int failed = -1;
            int code = 0;
            try {
                for (int i = 0; i < scripts.size() && failed < 0; i++) {
                    code = runScript(i, Path.of(scripts.get(i)), spec.getProperty("script." + i + ".name"));
                    if (code != 0) {
                        failed = i;
                    }
                }
            } finally {
                if (ProcessHandle.current().pid() == 1) {
                    // Daemons the scripts started keep files open; in this PID namespace only.
                    shell(List.of("/bin/sh", "-c", "kill -9 -1 2>/dev/null; exit 0"), "stopping the scripts' processes");
                }
                shell(List.of("/bin/sh", mounts.toString(), "down", root.toString(), stage.toString()),
                        "removing the script's mounts");
            }
            if (failed >= 0) {
                status.setProperty("result", "script-failed");
                status.setProperty("script", Integer.toString(failed));
                status.setProperty("exit", Integer.toString(code));
                return;
            }
            capture(assembled);
            status.setProperty("result", "ok");
        }
    }

    private int runScript(int index, Path script, String name) throws IOException {
        Path inside = root.resolve("dev/.kiln-script-" + index);
        Files.copy(script, inside);
        ProcessBuilder pb = new ProcessBuilder("chroot", root.toString(), "/bin/sh", "/dev/.kiln-script-" + index)
                .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().clear();
        for (int i = 0; spec.containsKey("env." + i); i++) {
            String kv = spec.getProperty("env." + i);
            int eq = kv.indexOf('=');
            pb.environment().put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        out.println("kiln: running " + name);
        Process p = pb.start();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                out.println("[" + name + "] " + line);
            }
        }
        try {
            return p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted");
        }
    }

    private void shell(List<String> cmd, String what) throws IOException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String text = Subprocess.drainAndWait(p, 120, what).trim();
        if (p.exitValue() != 0) {
            throw new InvalidSourceException(what + " failed: " + text.replace('\n', ' '));
        }
    }

    private void record() throws IOException {
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) throws IOException {
                note(d);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                note(f);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    private void note(Path p) throws IOException {
        Map<String, Object> a = Files.readAttributes(p, "unix:ino,ctime", LinkOption.NOFOLLOW_LINKS);
        exported.put(imagePath(p), new long[] {((Number) a.get("ino")).longValue(), nanos((FileTime) a.get("ctime"))});
    }

    private String imagePath(Path p) {
        String rel = RawPaths.string(root.relativize(p));
        return rel.isEmpty() ? "/" : "/" + rel;
    }

    private static long nanos(FileTime t) {
        var i = t.toInstant();
        return i.getEpochSecond() * 1_000_000_000L + i.getNano();
    }

    private boolean untouched(String path, long ino, FileTime ctime) {
        long[] e = exported.get(path);
        return e != null && e[0] == ino && e[1] == nanos(ctime);
    }

    /** The staged tree back into an image, restoring from the assembled root what the staging could not hold. */
    private void capture(Ext4Reader assembled) throws IOException {
        if (UserNamespace.which("getfattr") == null && !DirSource.xattrsByCalls()) {
            // (The release's runtime reads them itself: XattrCalls; Java 17 those of files: HostFd.)
            out.println(DirSource.xattrsByDescriptor()
                    ? "kiln: getfattr is not installed (apt-get install attr): xattrs of symbolic links and special "
                            + "files the script changed are not kept"
                    : "kiln: getfattr is not installed (apt-get install attr): only user.* xattrs of files the "
                            + "script changed are kept");
        }
        Ext4Options o = Ext4Options.builder(Long.parseLong(spec.getProperty("size"))).journal(false).build();
        try (Ext4Writer w = Ext4Writer.create(Path.of(spec.getProperty("captured")), o)) {
            new DirSource(root, new DirSource.Hook() {
                @Override
                public Metadata metadata(String path, Metadata host, long ino, FileTime ctime) throws IOException {
                    if (untouched(path, ino, ctime)) {
                        FileStat st = assembled.stat(path, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                        return new Metadata(st.mode(), st.uid(), st.gid(), st.atime(), st.mtime(), st.ctime(),
                                st.crtime(), assembled.xattrs(st.ino()));
                    }
                    return host;
                }

                @Override
                public boolean replace(String path, long ino, FileTime ctime, Ext4Writer writer) throws IOException {
                    if (!untouched(path, ino, ctime)) {
                        return false;
                    }
                    FileStat st = assembled.stat(path, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                    Metadata md = new Metadata(st.mode(), st.uid(), st.gid(), st.atime(), st.mtime(), st.ctime(),
                            st.crtime(), assembled.xattrs(st.ino()));
                    switch (st.type()) {
                        case CHAR_DEVICE -> writer.charDevice(path, md, st.major(), st.minor());
                        case BLOCK_DEVICE -> writer.blockDevice(path, md, st.major(), st.minor());
                        case SOCKET -> writer.socket(path, md);
                        default -> {
                            return false;
                        }
                    }
                    return true;
                }
            }).applyTo(w);
        }
    }

    /**
     * The mounts around the scripts, run as root of the namespaces. Mount points must not be
     * symlinks (a hostile base could point them at the host); those kiln creates are removed
     * afterwards, and /etc/resolv.conf and /etc/hosts get back exactly what the base had.
     */
    static final String MOUNTS = """
            set -eu
            action=$1 root=$2 stage=$3
            made=$stage/made-dirs
            up() {
              : > "$made"
              for d in proc dev sys etc; do
                if [ -L "$root/$d" ]; then echo "/$d is a symlink in the image; kiln mounts nothing there" >&2; exit 1; fi
                if [ ! -e "$root/$d" ]; then mkdir -m 0755 "$root/$d"; echo "$root/$d" >> "$made"; fi
              done
              mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
              mount -t tmpfs -o mode=0755,nosuid,size=65536k kiln-dev "$root/dev"
              for n in null zero full random urandom tty; do
                : > "$root/dev/$n"
                mount --bind "/dev/$n" "$root/dev/$n"
              done
              mkdir -m 0755 "$root/dev/pts"
              mkdir -m 1777 "$root/dev/shm"
              mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
              ln -s pts/ptmx "$root/dev/ptmx"
              mount -t tmpfs -o mode=1777,nosuid,nodev kiln-shm "$root/dev/shm"
              ln -s /proc/self/fd "$root/dev/fd"
              ln -s /proc/self/fd/0 "$root/dev/stdin"
              ln -s /proc/self/fd/1 "$root/dev/stdout"
              ln -s /proc/self/fd/2 "$root/dev/stderr"
              mount --rbind /sys "$root/sys"
              mount -o remount,bind,ro,nosuid,nodev,noexec "$root/sys" 2>/dev/null || mount -o remount,bind,ro "$root/sys"
              for f in resolv.conf hosts; do
                t=$root/etc/$f
                [ -f "$stage/host-$f" ] || continue
                if [ -L "$t" ] || { [ -e "$t" ] && [ ! -f "$t" ]; }; then
                  mv "$t" "$stage/orig-$f"; echo moved > "$stage/state-$f"; : > "$t"
                elif [ ! -e "$t" ]; then
                  : > "$t"; echo created > "$stage/state-$f"
                else
                  echo kept > "$stage/state-$f"
                fi
                mount --bind "$stage/host-$f" "$t"
              done
            }
            down() {
              for f in resolv.conf hosts; do
                t=$root/etc/$f
                [ -f "$stage/state-$f" ] || continue
                umount "$t" 2>/dev/null || umount -l "$t"
                case $(cat "$stage/state-$f") in
                  created) rm -f "$t" ;;
                  moved) rm -rf "$t"; mv "$stage/orig-$f" "$t" ;;
                esac
              done
              for d in sys dev proc; do
                if mountpoint -q "$root/$d" 2>/dev/null || grep -q " $root/$d " /proc/self/mounts; then
                  umount -R "$root/$d" 2>/dev/null || umount -l "$root/$d"
                fi
              done
              if [ -f "$made" ]; then
                while read -r d; do rmdir "$d" 2>/dev/null || true; done < "$made"
              fi
            }
            "$action"
            """;
}
