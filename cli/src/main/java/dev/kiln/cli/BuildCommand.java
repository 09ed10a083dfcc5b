package dev.kiln.cli;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.image.Build;
import dev.kiln.image.Sizes;
import dev.kiln.image.Source;
import dev.kiln.image.Sources;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HexFormat;
import java.util.UUID;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "build", sortOptions = false,
        description = {"Builds an ext4 root file system image from a source, in one streaming pass.",
            "Sources: registry images (the default), OCI layouts and archives, tar:FILE (plain, gzip, xz, zstd "
                + "or bzip2), dir:PATH, ext4:FILE, scratch.",
            "Options may also come from a build file (-f kiln.yaml) or an @argfile (one argument per line)."})
final class BuildCommand extends StandardOptions implements Callable<Integer> {
    @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "Read the build's options from a build "
            + "file (YAML: kiln build's long options as keys, paths relative to the file); flags given here override "
            + "its values and add to its lists.")
    Path buildFile;

    @Option(names = "--print-config", description = "Print the effective configuration (build file and flags "
            + "combined) as a build file, and exit.")
    boolean printConfig;

    @Option(names = "--lock", paramLabel = "FILE", description = "The lock file (default: kiln.lock beside the "
            + "build file). A build with -f records in it the base image's digest and the inputs' sha256.")
    Path lockFile;

    @Option(names = "--locked", description = "Build exactly what the lock file records: refuse when the base "
            + "image's tag now names another digest or an input changed.")
    boolean locked;

    @Option(names = "--image", paramLabel = "REF", description = {"Base image: a registry reference (alpine:3.20, "
            + "registry/repo:tag[@sha256:...], docker://...; also a rootfs published with kiln push), "
            + "oci:DIR[:TAG|@DIGEST], oci-archive:FILE, docker-archive:FILE[:TAG], tar:FILE, dir:PATH, ext4:FILE "
            + "or scratch."})
    String image;

    @Option(names = "--platform", paramLabel = "OS/ARCH[/VARIANT]",
            description = "Platform to take from a multi-platform image (default: the host's, ${DEFAULT-VALUE}).")
    String platform = dev.kiln.image.OciSource.Platform.host().toString();

    @Option(names = "--add", paramLabel = "SRC:DEST[:MODE[:UID:GID]]",
            description = "Add a host file or directory tree at DEST (repeatable); owner 0:0 unless given.")
    java.util.List<String> adds = new java.util.ArrayList<>();

    @Option(names = "--agent", paramLabel = "FILE",
            description = "The Nex agent binary: installs it with the Nex profile (OpenRC service, user nex, console).")
    Path agent;

    @Option(names = "--agent-init", paramLabel = "MODE", defaultValue = "openrc",
            description = "How the agent starts (${COMPLETION-CANDIDATES}): an OpenRC service (default) or as /sbin/init (PID 1: the kernel "
                    + "panics when it exits, so it must never return).")
    Choices.AgentInit agentInit;

    @Option(names = "--init", paramLabel = "PATH",
            description = "Make /sbin/init a symlink to PATH, an init the image has (e.g. /sbin/openrc-init on Debian "
                    + "with OpenRC, /bin/busybox).")
    String init;

    @Option(names = "--host-libs", description = "Copy from this machine what the agent needs to start (its #! "
            + "interpreter, ELF loader and shared libraries) to the same paths in the image, where the image lacks them.")
    boolean hostLibs;

    @Option(names = "--no-boot-check", description = "Do not check that the image can boot (init, agent, their "
            + "loaders and libraries, runlevel links).")
    boolean noBootCheck;

    @Option(names = "--agent-path", paramLabel = "PATH", defaultValue = "/usr/local/bin/agent",
            description = "Where the agent is installed (default: ${DEFAULT-VALUE}).")
    String agentPath;

    @Option(names = "--service-user", paramLabel = "NAME[:UID:GID]", defaultValue = "nex:1000:1000",
            converter = Converters.ServiceUserConverter.class,
            description = "The user the agent runs as (default: ${DEFAULT-VALUE}).")
    Converters.ServiceUser serviceUser;

    @Option(names = "--runlevel", paramLabel = "NAME", defaultValue = "boot",
            description = "OpenRC runlevel the agent is enabled in (default: ${DEFAULT-VALUE}).")
    String runlevel;

    @Option(names = "--root-password", paramLabel = "PASSWORD",
            description = "Set root's password (plain, hashed with SHA-512 crypt, or a ready crypt hash). "
                    + "Without it root stays locked (Nex's own image used root:root; kiln does not).")
    String rootPassword;

    @Option(names = "--script", paramLabel = "FILE",
            description = {"Run this shell script (repeatable, in order) with /bin/sh chrooted in the base and --add files, "
                    + "before the Nex profile, as a container build's RUN step: root in namespaces of its own (ids 0-65535 "
                    + "through /etc/subuid when not run as root), with /proc, /dev, read-only /sys, the host's network and "
                    + "resolv.conf.", "Environment: PATH, HOME=/root, TERM=dumb and --env."})
    java.util.List<Path> scripts = new java.util.ArrayList<>();

    @Option(names = "--env", paramLabel = "NAME=VALUE", description = "Set a variable for the scripts (repeatable).")
    java.util.List<String> env = new java.util.ArrayList<>();

    @Option(names = "--script-timeout", paramLabel = "SECONDS", defaultValue = "3600",
            description = "Stop the scripts after this long, together (default: ${DEFAULT-VALUE}).")
    long scriptTimeout;

    @picocli.CommandLine.Mixin RegistryOptions registryOptions;

    /** Nex's published base, used when --agent is given without --image. */
    static final String NEX_BASE = "synadia/nex-rootfs:alpine";

    @Option(names = "--free", paramLabel = "SIZE", defaultValue = "64M", converter = Converters.SizeConverter.class,
            description = "Headroom left free by --size auto (default: ${DEFAULT-VALUE}).")
    Converters.Size free;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", defaultValue = "rootfs.ext4",
            description = "Output image (default: ${DEFAULT-VALUE}); a name ending in .gz is gzip-compressed. "
                    + "FILE.sha256 is written beside it.")
    Path output;

    @Option(names = "--size", paramLabel = "SIZE", defaultValue = "150M", converter = Converters.ImageSizeConverter.class,
            description = "Image size in bytes or with a K/M/G/T suffix, or auto: the content plus --free "
                    + "(default: ${DEFAULT-VALUE}).")
    Converters.ImageSize size;

    @Option(names = "--block-size", paramLabel = "BYTES", defaultValue = "4096",
            description = "Block size: 1024, 2048 or 4096 (default: ${DEFAULT-VALUE}).")
    int blockSize;

    @Option(names = "--inode-ratio", paramLabel = "BYTES", defaultValue = "16384",
            description = "Bytes per inode (default: ${DEFAULT-VALUE}).")
    long inodeRatio;

    @Option(names = "--inodes", paramLabel = "N", description = "Number of inodes (overrides --inode-ratio).")
    Long inodes;

    @Option(names = "--label", paramLabel = "NAME", defaultValue = "", description = "Volume label (up to 16 bytes).")
    String label;

    @Option(names = "--uuid", paramLabel = "UUID",
            description = "File system UUID (default: derived from the content, so builds are reproducible).")
    UUID uuid;

    @Option(names = "--hash-seed", paramLabel = "UUID",
            description = "htree directory hash seed (default: derived from the UUID).")
    UUID hashSeed;

    @Option(names = "--source-date-epoch", paramLabel = "SECONDS", defaultValue = "${env:SOURCE_DATE_EPOCH}",
            converter = Converters.EpochConverter.class,
            description = "Time for the superblock and implicit directories (default: $SOURCE_DATE_EPOCH, else 0).")
    Long sourceDateEpoch;

    @Option(names = "--clamp-times", description = "Clamp inode times later than the source date epoch to it.")
    boolean clampTimes;

    @Option(names = "--inline-data", description = "Enable inline_data: files of up to 60 bytes live in their inode.")
    boolean inlineData;

    @Option(names = "--no-sparse", description = "Allocate all-zero blocks of files instead of leaving holes.")
    boolean noSparse;

    @Option(names = "--no-sync", description = "Do not flush the image to the device before renaming it into place "
            + "(faster; a crash right after the build may leave an incomplete image). For images used at once.")
    boolean noSync;

    @Option(names = "--verify", description = "Check the finished image (as kiln verify does) before publishing it.")
    boolean verify;

    @Option(names = "--boot-test", description = {"Boot the finished image in a microVM (needs --kernel) and publish it only if "
            + "the agent's readiness line appears (the Nex service prints '" + dev.kiln.image.NexProfile.READY + "'; "
            + "with --agent-init pid1 or no --agent, give --boot-expect).", "The VM options are those of kiln boot."})
    boolean bootTest;

    @Option(names = "--boot-expect", paramLabel = "TEXT", description = "The console line --boot-test waits for.")
    String bootExpect;

    @picocli.CommandLine.Mixin BootCommand.VmOptions vm;

    @Option(names = "--push", paramLabel = "REF", description = "After the build and its checks (--verify is on, "
            + "--boot-test when given), publish the image to REF as kiln push does; prints the manifest digest.")
    String push;

    @Option(names = "--push-compression", paramLabel = "FORMAT", defaultValue = "gzip",
            description = "How --push stores the image: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    Choices.Compress pushCompression;

    private dev.kiln.image.registry.ImageReference pushRef;

    @Option(names = "--no-checksum-file", description = "Do not write OUTPUT.sha256.")
    boolean noChecksumFile;

    @Option(names = {"-q", "--quiet"}, description = "Print nothing on stderr but errors.")
    boolean quiet;

    @Option(names = "--json", description = "Print a JSON summary on stdout.")
    boolean json;

    @Option(names = "--stacktrace", description = "Print the stack trace of an error.")
    boolean stacktrace;

    /** The boot test: checked before anything is built, run on the finished image before it is renamed into place. */
    private Build.ImageCheck bootCheck() {
        vm.check(spec);
        String expect = bootExpect;
        if (expect == null) {
            if (agent == null || agentInit != Choices.AgentInit.openrc) {
                throw new Errors.UsageException("--boot-test: give --boot-expect TEXT, the line the guest prints when it is ready "
                        + "(only the OpenRC agent service prints one kiln knows)");
            }
            expect = dev.kiln.image.NexProfile.READY;
        }
        for (Path p : vm.bootFiles()) {
            if (!java.nio.file.Files.isRegularFile(p)) {
                throw new Errors.UsageException(p + ": no such file; give the guest kernel (and initramfs) for --boot-test");
            }
        }
        Microvm m = vm.microvm();
        String text = expect;
        java.io.PrintWriter err = spec.commandLine().getErr();
        return image -> {
            if (!quiet) {
                err.println("kiln: boot test (" + BootCommand.describe(m) + ")");
                err.flush();
            }
            Microvm.Result r;
            try {
                r = m.boot(vm.spec(image, false, text), quiet ? null : err);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("boot test interrupted");
            }
            String failed = BootCommand.report(err, output + " (boot test)", r, text, vm.timeout, !quiet);
            if (failed != null) {
                throw new BootTestException(failed + "; " + output + " was not written");
            }
        };
    }

    /** The image did not pass its boot test. */
    static final class BootTestException extends RuntimeException {
        BootTestException(String message) {
            super(message);
        }
    }

    @Override
    public Integer call() throws Exception {
        if (printConfig) {
            spec.commandLine().getOut().print(BuildFile.effective(spec));
            spec.commandLine().getOut().flush();
            return Kiln.OK;
        }
        if (image == null) {
            if (agent == null) {
                throw new Errors.UsageException("--image is required (a registry reference such as alpine:3.20, or "
                        + "oci:DIR, docker-archive:FILE, tar:FILE, dir:PATH, ext4:FILE, scratch)");
            }
            image = NEX_BASE;
        }
        dev.kiln.image.OciSource.Platform plat;
        try {
            plat = dev.kiln.image.OciSource.Platform.parse(platform);
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException("--platform: " + e.getMessage());
        }
        boolean auto = size.auto();
        long bytes = size.bytes();
        long freeBytes = free.bytes();
        Long epoch = sourceDateEpoch;
        Instant time = Instant.ofEpochSecond(epoch == null ? 0 : epoch);
        Path lock = lockFile != null ? lockFile
                : buildFile != null ? buildFile.toAbsolutePath().getParent().resolve("kiln.lock") : null;
        BuildLock pinned = null;
        if (locked) {
            if (lock == null) {
                throw new Errors.UsageException("--locked needs a lock file: give -f kiln.yaml (its kiln.lock) or --lock FILE");
            }
            pinned = BuildLock.read(lock);
            if (registryOptions.pull == Choices.Pull.missing) {
                registryOptions.pull = Choices.Pull.always; // a moved tag is only seen by asking the registry
            }
        }
        java.util.List<Source> sources = new java.util.ArrayList<>();
        sources.add(Sources.parse(image, plat, registryOptions.registry(spec.commandLine().getErr(), quiet)));
        if (pinned != null) {
            if (sources.get(0) instanceof dev.kiln.image.RegistrySource rs) {
                rs.resolveDigest();
            }
            String diff = pinned.differenceFrom(lockOf(sources.get(0), lock));
            if (diff != null) {
                throw new BuildLock.InvalidLock(lock + ": " + diff + "; build without --locked to update the lock");
            }
        }
        for (String a : adds) {
            try {
                sources.add(dev.kiln.image.AddSource.parse(a));
            } catch (IllegalArgumentException e) {
                throw new Errors.UsageException(e.getMessage());
            }
        }
        dev.kiln.image.NexProfile profile = agent != null ? profile(time) : null;
        if (profile != null && scripts.isEmpty()) {
            sources.add(profile);
        }
        if (auto) {
            bytes = autoSize(sources, freeBytes);
        }
        if (auto && profile != null && !scripts.isEmpty()) {
            bytes += 16L << 20;
        }
        if (init != null && agent != null && agentInit == Choices.AgentInit.pid1) {
            throw new Errors.UsageException("--init and --agent-init pid1 both set /sbin/init; drop one");
        }
        if (hostLibs && agent == null) {
            throw new Errors.UsageException("--host-libs copies what the agent needs; give --agent FILE");
        }
        if (scripts.isEmpty()) {
            sources.addAll(finishing(time));
        }
        this.platformArch = plat.arch();
        int rc = build(sources, profile, bytes, time, auto, freeBytes);
        if (rc == Kiln.OK && lock != null && !locked) {
            lockOf(sources.get(0), lock).write(lock);
        }
        return rc;
    }

    /** What this build resolved; paths below the lock file's directory are recorded relative to it. */
    private BuildLock lockOf(Source base, Path lock) throws java.io.IOException {
        String dir = lock.toAbsolutePath().getParent().toString() + "/";
        java.util.Map<String, String> inputs = new java.util.LinkedHashMap<>();
        BuildLock.inputs(agent, scripts, adds, image).forEach((k, v) -> inputs.put(k.replace(dir, ""), v));
        return new BuildLock(BuildLock.VERSION, image.replace(dir, ""), base.digest(), platform, inputs);
    }

    private dev.kiln.image.NexProfile profile(Instant time) {
        if (java.nio.file.Files.isDirectory(agent)) {
            throw new dev.kiln.image.InvalidSourceException(agent + ": is a directory; give --agent the agent binary itself");
        }
        dev.kiln.image.NexProfile.Builder b = dev.kiln.image.NexProfile.builder(agent).time(time).agentPath(agentPath);
        try {
            b.runlevel(runlevel);
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException("--runlevel: " + e.getMessage());
        }
        b.init(agentInit == Choices.AgentInit.pid1 ? dev.kiln.image.NexProfile.Init.PID1
                : dev.kiln.image.NexProfile.Init.OPENRC);
        try {
            b.user(serviceUser.name(), serviceUser.uid(), serviceUser.gid());
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException("--service-user: " + e.getMessage() + ": " + serviceUser);
        }
        if (!agentPath.startsWith("/")) {
            throw new Errors.UsageException("--agent-path must be absolute: " + agentPath);
        }
        if (rootPassword != null) {
            b.rootPassword(rootPassword);
        }
        return b.build();
    }

    /**
     * --size auto: content plus metadata, with the requested headroom, rounded up to a MiB. The
     * estimate errs large; if it is still short the build retries once with what it needed.
     */
    private long autoSize(java.util.List<Source> sources, long freeBytes) throws java.io.IOException {
        long content = 0;
        long entries = 0;
        for (Source s : sources) {
            long[] e = s.estimate();
            content += e[0];
            entries += e[1];
        }
        long bs = blockSize;
        autoInodes = entries + entries / 4 + 1024;
        long blocks = content / bs + entries + entries / 8;
        long est = blocks * bs + content / 20 + (entries * 256 * 2) + (32L << 20) + freeBytes;
        return (est + (1 << 20) - 1) & ~((1L << 20) - 1);
    }

    private long autoInodes;

    private Integer build(java.util.List<Source> sources, dev.kiln.image.NexProfile profile, long bytes, Instant time,
            boolean auto, long freeBytes) throws Exception {
        try {
            return buildOnce(sources, profile, bytes, time);
        } catch (dev.kiln.ext4.CapacityExceededException e) {
            if (!auto) {
                throw e;
            }
            autoInodes = Math.max(autoInodes, e.inodesNeeded() * 5 / 4 + 1024);
            long need = Math.max(bytes * 3 / 2, (e.blocksNeeded() * blockSize) * 5 / 4 + freeBytes);
            need = (need + (1 << 20) - 1) & ~((1L << 20) - 1);
            return buildOnce(sources, profile, need, time);
        }
    }

    private String platformArch;

    /** After the profile: --host-libs, then --init. */
    private java.util.List<Source> finishing(Instant time) {
        java.util.List<Source> out = new java.util.ArrayList<>();
        if (hostLibs) {
            out.add(new dev.kiln.image.HostLibs(agent, time));
        }
        if (init != null) {
            try {
                out.add(new dev.kiln.image.InitLink(init, time));
            } catch (IllegalArgumentException e) {
                throw new Errors.UsageException(e.getMessage());
            }
        }
        return out;
    }

    /**
     * Can the image boot to its agent? For a root file system (--agent, --init or --boot-test)
     * an error stops the build before anything is published; otherwise findings are warnings
     * (the image may be a data disk).
     */
    private Build.ImageCheck bootability() {
        if (noBootCheck) {
            return null;
        }
        boolean strict = agent != null || init != null || bootTest;
        boolean pid1 = agent != null && agentInit == Choices.AgentInit.pid1;
        dev.kiln.image.BootCheck check = new dev.kiln.image.BootCheck(platformArch, agent != null ? agentPath : null, pid1);
        java.io.PrintWriter err = spec.commandLine().getErr();
        return image -> {
            java.util.List<dev.kiln.image.BootCheck.Problem> problems;
            try (dev.kiln.ext4.Ext4Reader r = dev.kiln.ext4.Ext4Reader.open(image)) {
                problems = check.check(r);
            }
            boolean failed = strict && dev.kiln.image.BootCheck.failed(problems);
            for (var p : problems) {
                boolean error = strict && p.severity() == dev.kiln.image.BootCheck.Severity.ERROR;
                if (!quiet && !(failed && p == problems.get(0))) {
                    err.println("kiln: " + (error ? "error: " : "warning: ") + p.path() + ": " + p.message());
                }
            }
            err.flush();
            if (failed) {
                var first = problems.get(0);
                throw new dev.kiln.image.InvalidSourceException(first.path() + ": " + first.message() + "; " + output
                        + " was not written (--no-boot-check skips this check)");
            }
        };
    }

    private Integer buildOnce(java.util.List<Source> sources, dev.kiln.image.NexProfile profile, long bytes,
            Instant time) throws Exception {
        HeapGovernor.start();
        Ext4Options.Builder ob;
        try {
            // The file system options are checked here: a bad value is an option error (exit 2).
            ob = Ext4Options.builder(bytes).blockSize(blockSize).inodeRatio(inodeRatio)
                    .label(label).timestamp(time).sparseFiles(!noSparse).inlineData(inlineData).sync(!noSync);
            if (inodes != null) {
                ob.inodeCount(inodes);
            } else if (autoInodes > bytes / inodeRatio) {
                ob.inodeCount(autoInodes);
            }
            if (clampTimes) {
                ob.clampTimes(time);
            }
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException(e.getMessage());
        }
        if (uuid != null) {
            ob.uuid(uuidBytes(uuid));
        }
        if (hashSeed != null) {
            ob.hashSeed(uuidBytes(hashSeed));
        }
        if (!quiet) {
            spec.commandLine().getErr().println("kiln: building " + output + " (" + Sizes.human(bytes) + ") from "
                    + sources.get(0).describe() + (sources.size() > 1 ? " + " + (sources.size() - 1) + " more" : ""));
        }
        Ext4Options options;
        try {
            options = ob.build();
        } catch (IllegalArgumentException e) {
            throw new Errors.UsageException(e.getMessage());
        }
        if (push != null) {
            pushRef = PushCommand.reference(push);
            PushCommand.compression(pushCompression.name());
        }
        Build.Builder bb = Build.builder().options(options).output(output).checksumFile(!noChecksumFile).digest(json)
                .verify(verify || push != null);
        Build.ImageCheck boot = null;
        if (bootTest) {
            boot = bootCheck();
        } else if (vm.kernel != null || bootExpect != null) {
            throw new Errors.UsageException("--kernel and --boot-expect are for --boot-test; add --boot-test to boot the image");
        }
        Build.ImageCheck bootable = bootability();
        Build.ImageCheck booted = boot;
        bb.check(image -> {
            if (bootable != null) {
                bootable.check(image);
            }
            if (booted != null) {
                booted.check(image);
            }
        });
        if (!scripts.isEmpty()) {
            // As in Nex's recipe: the scripts run on the base and added files, then the profile is applied and checked.
            java.util.Map<String, String> vars = new java.util.LinkedHashMap<>();
            for (String e : env) {
                try {
                    var kv = dev.kiln.image.ScriptStage.parseEnv(e);
                    vars.put(kv.getKey(), kv.getValue());
                } catch (IllegalArgumentException ex) {
                    throw new Errors.UsageException(ex.getMessage());
                }
            }
            Path work = output.toAbsolutePath().getParent();
            java.io.PrintWriter err = spec.commandLine().getErr();
            if (scriptTimeout <= 0) {
                throw new Errors.UsageException("--script-timeout must be a positive number of seconds");
            }
            bb.source(new dev.kiln.image.ScriptStage(sources, options, scripts, vars, work, quiet ? null : line -> {
                err.println(line);
                err.flush();
            }).timeout(scriptTimeout));
            if (profile != null) {
                bb.source(profile);
            }
            finishing(time).forEach(bb::source);
        } else {
            if (!env.isEmpty()) {
                throw new Errors.UsageException("--env is for --script; add --script FILE or drop --env");
            }
            sources.forEach(bb::source);
        }
        Build.Result r;
        if (quiet) {
            r = bb.build().run();
        } else {
            try (ProgressDisplay pd = new ProgressDisplay(spec.commandLine().getErr(), Terminal.stderrIsInteractive())) {
                bb.progress(pd);
                r = bb.build().run();
            }
        }
        var s = r.summary();
        if (!quiet) {
            for (Source src : sources) {
                for (String note : src.notes()) {
                    spec.commandLine().getErr().println("kiln: note: " + note);
                }
            }
            long used = s.blocksCount() - s.freeBlocks();
            // Concatenated, not printf: the Formatter's first use costs a small build ~20 ms.
            spec.commandLine().getErr().println("kiln: wrote " + r.output() + ": " + s.files() + " files, "
                    + s.directories() + " directories, " + s.symlinks() + " symlinks (inodes); "
                    + Sizes.human(used * s.blockSize()) + " of " + Sizes.human(s.blocksCount() * s.blockSize()) + " used");
        }
        dev.kiln.image.RootfsTransfer.Pushed pushed = null;
        if (push != null) {
            // Only an image that passed its checks (--verify is on with --push, --boot-test when given) gets here.
            java.util.Map<String, String> provenance = new java.util.LinkedHashMap<>();
            provenance.put(dev.kiln.image.registry.RootfsArtifact.SOURCE, sources.get(0).describe());
            if (sources.get(0).digest() != null) {
                provenance.put(dev.kiln.image.registry.RootfsArtifact.SOURCE_DIGEST, sources.get(0).digest());
            }
            java.io.PrintWriter err = spec.commandLine().getErr();
            var reg = registryOptions.registry(err, quiet);
            pushed = dev.kiln.image.RootfsTransfer.push(reg.client(), pushRef, r.output(),
                    PushCommand.compression(pushCompression.name()), provenance, null, r.output().getParent(), line -> {
                        if (!quiet) {
                            err.println(line);
                            err.flush();
                        }
                    });
            if (!quiet) {
                err.println("kiln: pushed " + r.output() + " to " + pushRef + " as " + pushed.digest());
            }
            if (!json) {
                spec.commandLine().getOut().println(pushed.digest());
            }
        }
        if (json) {
            java.util.Map<String, Object> j = new java.util.LinkedHashMap<>();
            j.put("output", r.output().toString());
            j.put("sha256", r.sha256());
            j.put("bytes", r.bytes());
            j.put("blockSize", s.blockSize());
            j.put("blocks", s.blocksCount());
            j.put("freeBlocks", s.freeBlocks());
            j.put("inodes", s.inodesCount());
            j.put("freeInodes", s.freeInodes());
            j.put("uuid", uuidString(s.uuid()));
            j.put("files", s.files());
            j.put("directories", s.directories());
            j.put("symlinks", s.symlinks());
            j.put("devices", s.devices());
            j.put("other", s.others());
            j.put("holesSkipped", s.holesSkipped());
            if (pushed != null) {
                j.put("push", java.util.Map.of("reference", pushed.reference(), "digest", pushed.digest(), "uploaded",
                        pushed.uploaded()));
            }
            spec.commandLine().getOut().println(new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(j));
        }
        return Kiln.OK;
    }

    static byte[] uuidBytes(UUID u) {
        return java.nio.ByteBuffer.allocate(16).putLong(u.getMostSignificantBits()).putLong(u.getLeastSignificantBits())
                .array();
    }

    static String uuidString(byte[] b) {
        String h = HexFormat.of().formatHex(b);
        return h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-" + h.substring(16, 20)
                + "-" + h.substring(20);
    }
}
