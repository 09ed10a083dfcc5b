package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/**
 * {@link CommandModels}, the code-built models of kiln's commands, against the models picocli
 * reads off the commands' annotations: the source must be the generator's current output, and
 * for every command the two models must agree in every argument's attributes, in their help and
 * in what any command line parses to (or in the error it gives).
 */
class CommandModelsTest {
    private static CommandSpec annotated(String name) {
        return new CommandLine(ModelSource.instance(ModelSource.COMMANDS.get(name))).getCommandSpec();
    }

    private static CommandSpec generated(String name) {
        return new CommandLine(CommandModels.of(name)).getCommandSpec();
    }

    @Test
    void checkedInSourceIsWhatTheGeneratorWritesNow() throws Exception {
        String now = ModelSource.build();
        if (Boolean.getBoolean("kiln.model.write")) {
            Files.writeString(ModelSource.FILE, now, StandardCharsets.UTF_8);
        }
        assertEquals(now, Files.readString(ModelSource.FILE, StandardCharsets.UTF_8),
                "CommandModels.java is stale: an option of a command changed; regenerate it as its first lines say");
    }

    @Test
    void everyArgumentHasTheAnnotatedAttributes() {
        for (String name : ModelSource.COMMANDS.keySet()) {
            CommandSpec a = annotated(name);
            CommandSpec g = generated(name);
            assertEquals(a.name(), g.name());
            assertEquals(a.mixins().keySet(), g.mixins().keySet(), name);
            assertEquals(a.args().size(), g.args().size(), name);
            assertEquals(a.options().size(), g.options().size(), name);
            for (int i = 0; i < a.args().size(); i++) {
                assertEquals(attributes(a.args().get(i)), attributes(g.args().get(i)), name + " " + a.args().get(i));
            }
            for (String m : a.mixins().keySet()) {
                assertEquals(a.mixins().get(m).args().stream().map(ArgSpec::toString).toList(),
                        g.mixins().get(m).args().stream().map(ArgSpec::toString).toList(), name + " mixin " + m);
            }
        }
    }

    /** What picocli shows and uses of an argument, as text (converters and candidates by class and content). */
    private static Map<String, Object> attributes(ArgSpec o) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (o instanceof OptionSpec opt) {
            m.put("names", List.of(opt.names()));
            m.put("negatable", opt.negatable());
            m.put("order", opt.order());
            m.put("fallbackValue", opt.fallbackValue());
            m.put("help", List.of(opt.usageHelp(), opt.versionHelp(), opt.help()));
        } else {
            m.put("index", ((PositionalParamSpec) o).index().toString());
        }
        m.put("toString", o.toString());
        m.put("arity", o.arity() + (o.arity().isUnspecified() ? " unspecified" : ""));
        m.put("paramLabel", o.paramLabel());
        m.put("hideParamSyntax", o.hideParamSyntax());
        m.put("description", List.of(o.description()));
        m.put("descriptionKey", o.descriptionKey());
        m.put("defaultValue", o.defaultValue());
        m.put("defaultValueString", o.defaultValueString());
        m.put("initialValue", o.initialValue());
        m.put("hasInitialValue", o.hasInitialValue());
        m.put("type", o.type());
        m.put("auxiliaryTypes", List.of(o.auxiliaryTypes()));
        m.put("typeInfo", Arrays.asList(o.typeInfo().isBoolean(), o.typeInfo().isMultiValue(), o.typeInfo().isArray(),
                o.typeInfo().isCollection(), o.typeInfo().isMap(), o.typeInfo().isEnum(), o.typeInfo().isOptional(),
                o.typeInfo().getClassName(), o.typeInfo().getEnumConstantNames()));
        m.put("converters", Arrays.stream(o.converters()).map(c -> c.getClass().getName()).toList());
        List<String> candidates = new ArrayList<>();
        if (o.completionCandidates() != null) {
            o.completionCandidates().forEach(candidates::add);
        }
        m.put("completionCandidates", candidates);
        m.put("required", o.required());
        m.put("hidden", o.hidden());
        m.put("split", o.splitRegex() + " " + o.splitRegexSynopsisLabel());
        m.put("mapFallbackValue", o.mapFallbackValue());
        m.put("showDefaultValue", o.showDefaultValue());
        m.put("interactive", Arrays.asList(o.interactive(), o.echo(), o.prompt()));
        m.put("scope", o.scopeType());
        m.put("inherited", o.inherited());
        m.put("consumer", o.parameterConsumer() == null ? "" : o.parameterConsumer().getClass().getName());
        m.put("preprocessor", o.preprocessor().getClass().getName());
        return m;
    }

    @Test
    void helpIsTheAnnotatedModelsHelp() {
        for (String name : ModelSource.COMMANDS.keySet()) {
            for (int width : new int[] {80, 120}) {
                assertEquals(help(annotated(name), width), help(generated(name), width), name);
            }
        }
        assertTrue(help(generated("build"), 80).contains("--source-date-epoch=SECONDS"));
    }

    private static String help(CommandSpec spec, int width) {
        CommandLine cl = new CommandLine(spec);
        cl.setUsageHelpWidth(width);
        return cl.getUsageMessage(CommandLine.Help.Ansi.OFF);
    }

    @Test
    void commandLinesParseToTheSameFieldsOrTheSameError() throws Exception {
        // Per command: fixed lines of its own words, then random mixtures of them (and of some
        // bad values), with a fixed seed that can be changed.
        long seed = Long.getLong("kiln.test.seed", 20261205L);
        Random r = new Random(seed);
        int parsed = 0;
        int lines = 0;
        for (String name : ModelSource.COMMANDS.keySet()) {
            List<String> words = words(annotated(name));
            List<String[]> all = new ArrayList<>();
            all.add(new String[0]);
            all.add(words.toArray(String[]::new));
            for (int i = 0; i < 150; i++) {
                String[] l = new String[r.nextInt(9)];
                for (int j = 0; j < l.length; j++) {
                    l[j] = words.get(r.nextInt(words.size()));
                }
                all.add(l);
            }
            for (String[] line : all) {
                String a = parse(name, false, line);
                String g = parse(name, true, line);
                assertEquals(a, g, "seed " + seed + ": kiln " + name + " " + String.join(" ", line));
                parsed += a.startsWith("error") ? 0 : 1;
                lines++;
            }
        }
        assertTrue(parsed > lines / 10, "too few lines parsed without an error to compare fields: " + parsed + " of " + lines);
    }

    /** A command's own words: option names, values their types take (and some they refuse), positional values. */
    private static List<String> words(CommandSpec spec) {
        List<String> w = new ArrayList<>(List.of("img.ext4", "/etc", "reg.example/x:1", "--no-such-option", "-", "7"));
        for (OptionSpec o : spec.options()) {
            w.addAll(List.of(o.names()));
            if (o.typeInfo().isBoolean()) {
                continue;
            }
            if (o.completionCandidates() != null) {
                o.completionCandidates().forEach(w::add);
            }
            if (o.defaultValue() != null && !o.defaultValue().isEmpty()) {
                w.add(o.defaultValue());
            }
            w.add(o.longestName() + "=" + (o.defaultValue() != null ? o.defaultValue() : "v"));
            w.add(o.longestName() + "=lots");
        }
        return w;
    }

    /** The command's fields after parsing {@code args}, or the parse error, as text. */
    private static String parse(String name, boolean generated, String... args) throws Exception {
        Object c = ModelSource.instance(ModelSource.COMMANDS.get(name));
        CommandLine cl;
        if (generated) {
            CommandSpec spec = (CommandSpec) CommandModels.class.getDeclaredMethod(name + "Model", c.getClass()).invoke(null, c);
            cl = new CommandLine(spec);
        } else {
            cl = new CommandLine(c);
        }
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOverwrittenOptionsAllowed(true);
        try {
            cl.parseArgs(args);
        } catch (CommandLine.ParameterException e) {
            return "error: " + e.getMessage();
        }
        StringBuilder s = new StringBuilder();
        fields(c, cl.getCommandSpec(), s);
        return s.toString();
    }

    private static void fields(Object o, CommandSpec spec, StringBuilder s) throws IllegalAccessException {
        for (Class<?> k = o.getClass(); k != Object.class; k = k.getSuperclass()) {
            for (Field f : k.getDeclaredFields()) {
                if (Modifier.isStatic(f.getModifiers())) {
                    continue;
                }
                f.setAccessible(true);
                if (f.isAnnotationPresent(CommandLine.Spec.class)) {
                    assertSame(spec, f.get(o), "the @Spec field is the command's model");
                } else if (f.isAnnotationPresent(CommandLine.Mixin.class)) {
                    fields(f.get(o), spec, s);
                } else {
                    s.append(k.getSimpleName()).append('.').append(f.getName()).append('=').append(f.get(o)).append('\n');
                }
            }
        }
    }

    @Test
    void aCommandLineNamingACommandUsesItsCodeBuiltModelAndHelpPagesTheAnnotatedOne() {
        for (String name : ModelSource.COMMANDS.keySet()) {
            CommandLine fast = Kiln.commandLine(name).getSubcommands().get(name);
            CommandLine full = Kiln.commandLine().getSubcommands().get(name);
            ArgSpec f = fast.getCommandSpec().args().get(0);
            ArgSpec a = full.getCommandSpec().args().get(0);
            assertEquals("dev.kiln.cli.CommandModels$Field", f.getter().getClass().getName(), name);
            assertEquals("picocli.CommandLine$Model$FieldBinding", a.getter().getClass().getName(), name);
            assertNotNull(fast.getCommandSpec().versionProvider(), name + " -V");
        }
        assertNull(CommandModels.of("extract"), "extract's argument group keeps the annotated model");
    }
}
