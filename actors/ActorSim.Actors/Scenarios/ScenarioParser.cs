using System.Globalization;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ActorSim.Actors.Scenarios;

/// <summary>Reads scenario files (shared/docs/scenario-format.md). Every error names the file, the
/// line and the field. Unknown keys, unknown names and duplicate names are errors.</summary>
public sealed partial class ScenarioParser
{
    /// <summary>Scenario files larger than this are refused before they are read.</summary>
    public const long MaxFileBytes = 1 << 20;

    private readonly string _file;
    private readonly HashSet<string> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, VfioDriver> _driverOf = new(StringComparer.Ordinal);
    private readonly HashSet<string> _vms = new(StringComparer.Ordinal);
    // cpu.mte, read before the VMs: a VM's mte needs it.
    private bool _cpuMte;
    private readonly HashSet<string> _mappings = new(StringComparer.Ordinal);

    private ScenarioParser(string file) => _file = file;

    public static Scenario ParseFile(string path)
    {
        // (new FileInfo("") throws ArgumentException: `actorsim scenario ''` ended unhandled, exit 134.)
        if (path.Length == 0) throw new ScenarioFormatException("''", 0, "file", "an empty path, not a file");
        var info = new FileInfo(path);
        if (!info.Exists) throw new ScenarioFormatException(path, 0, "file", Directory.Exists(path) ? "a directory, not a file" : "no such file");
        if (info.Length > MaxFileBytes) throw new ScenarioFormatException(path, 0, "file", $"larger than {MaxFileBytes} bytes");
        // Checked again as it is read: a pipe or a terminal (the standard input, "-") has no length to
        // check before it is read.
        var bytes = new MemoryStream();
        using (var stream = File.OpenRead(path))
        {
            var chunk = new byte[16 * 1024];
            for (int got; (got = stream.Read(chunk)) > 0;)
            {
                bytes.Write(chunk, 0, got);
                if (bytes.Length > MaxFileBytes) throw new ScenarioFormatException(path, 0, "file", $"larger than {MaxFileBytes} bytes");
            }
        }
        bytes.Position = 0;
        using var reader = new StreamReader(bytes, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Parse(reader.ReadToEnd(), path);
    }

    /// <summary>YAML nested deeper than this is refused before it is loaded (a scenario needs 6 levels):
    /// YamlDotNet parses and loads nested nodes recursively, and a scenario whose name was 100,000 '['
    /// ended the process on a stack overflow (exit 134), which no handler can catch.</summary>
    public const int MaxDepth = 64;

    public static Scenario Parse(string text, string file)
    {
        var stream = new YamlStream();
        try
        {
            CheckDepth(text, file);
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new ScenarioFormatException(file, (int)e.Start.Line, "yaml", e.InnerException?.Message ?? e.Message);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or KeyNotFoundException or NotSupportedException)
        {
            // YamlDotNet throws these for some malformed documents (e.g. an alias to no anchor).
            throw new ScenarioFormatException(file, 1, "yaml", $"malformed YAML ({e.Message})");
        }
        // Where it went wrong: an empty file at its start, a second document where it begins, a list or a
        // lone value where it is.
        if (stream.Documents.Count == 0) throw new ScenarioFormatException(file, 1, "document", "empty: a scenario is one YAML mapping");
        if (stream.Documents.Count > 1)
            throw new ScenarioFormatException(file, (int)stream.Documents[1].RootNode.Start.Line, "document", "a second YAML document: a scenario is one YAML mapping");
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new ScenarioFormatException(file, (int)stream.Documents[0].RootNode.Start.Line, "document",
                $"a scenario is one YAML mapping, not a {(stream.Documents[0].RootNode is YamlSequenceNode ? "list" : "single value")}");
        return new ScenarioParser(file).ParseRoot(root);
    }

    /// <summary>Counts the nesting on YamlDotNet's parser, event by event: the parser keeps its states in
    /// a list, loading builds the nodes by recursion. (Its scanner alone, tried first, spun at full CPU for
    /// 9 minutes, unfinished, on the fuzz tests' inputs: it is meant to be driven by the parser.)</summary>
    private static void CheckDepth(string text, string file)
    {
        var parser = new Parser(new StringReader(text));
        var depth = 0;
        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case YamlDotNet.Core.Events.SequenceStart or YamlDotNet.Core.Events.MappingStart:
                    if (++depth > MaxDepth)
                        throw new ScenarioFormatException(file, (int)parser.Current.Start.Line, "yaml", $"nested deeper than {MaxDepth} levels");
                    break;
                case YamlDotNet.Core.Events.SequenceEnd or YamlDotNet.Core.Events.MappingEnd:
                    depth--;
                    break;
            }
        }
    }

    private ScenarioFormatException Error(YamlNode node, string field, string message) =>
        new(_file, (int)node.Start.Line, field, message);

    private Scenario ParseRoot(YamlMappingNode root)
    {
        var m = Keys(root, "scenario", "name", "kernel", "cpu", "word-size", "seed", "devices", "vms", "steps");
        var name = Str(Required(m, root, "name"), "name");
        var kernelNode = Required(m, root, "kernel");
        if (!RuleSets.TryParse(Str(kernelNode, "kernel"), out var rules))
            throw Error(kernelNode, "kernel", $"unknown rule set '{Str(kernelNode, "kernel")}' (6.8, 6.9 or 6.17)");
        bool fwb = true, dic = true;
        if (m.TryGetValue("cpu", out var cpuNode))
        {
            var cpu = Keys(Map(cpuNode, "cpu"), "cpu", "fwb", "dic", "mte");
            if (cpu.TryGetValue("fwb", out var f)) fwb = Bool(f, "cpu.fwb");
            if (cpu.TryGetValue("dic", out var d)) dic = Bool(d, "cpu.dic");
            if (cpu.TryGetValue("mte", out var t)) _cpuMte = Bool(t, "cpu.mte");
        }
        var word = WordSize.Bits64;
        YamlNode? wordNode = null;
        if (m.TryGetValue("word-size", out wordNode))
        {
            word = Int(wordNode, "word-size") switch
            {
                64 => WordSize.Bits64,
                32 => WordSize.Bits32,
                _ => throw Error(wordNode, "word-size", "must be 32 or 64"),
            };
        }
        ulong? seed = m.TryGetValue("seed", out var seedNode) ? Number(seedNode, "seed") : null;

        var devices = new List<DeviceSpec>();
        if (m.TryGetValue("devices", out var devNode))
            foreach (var d in Seq(devNode, "devices")) devices.Add(ParseDevice(d));
        var vms = new List<VmSpec>();
        if (m.TryGetValue("vms", out var vmNode))
            foreach (var v in Seq(vmNode, "vms")) vms.Add(ParseVm(v));
        if (word == WordSize.Bits32 && vms.Count > 0)
            throw Error(wordNode!, "word-size", "arm64 KVM is 64-bit only: word-size 32 cannot have VMs");

        var steps = new List<Step>();
        if (m.TryGetValue("steps", out var stepsNode))
            foreach (var s in Seq(stepsNode, "steps")) steps.Add(ParseStep(s, steps.Count + 1));
        return new Scenario(_file, name, new KernelPolicy(rules, new CpuFeatures(fwb, dic), word), seed, devices, vms, steps, _cpuMte);
    }

    private DeviceSpec ParseDevice(YamlNode node)
    {
        var m = Keys(Map(node, "devices[]"), "devices[]", "name", "driver", "bars", "regions");
        var name = NewName(Required(m, node, "name"), "devices[].name", _devices, stream: true);
        var driverNode = Required(m, node, "driver");
        var driver = Str(driverNode, "driver") switch
        {
            "vfio-pci" => VfioDriver.VfioPci,
            "vfio-platform" => VfioDriver.VfioPlatform,
            "nvgrace-gpu" => VfioDriver.NvgraceGpu,
            var other => throw Error(driverNode, "driver", $"unknown driver '{other}' (vfio-pci, vfio-platform, nvgrace-gpu)"),
        };
        _driverOf[name] = driver;
        var regions = new List<RegionSpec>();
        if (m.TryGetValue("bars", out var bars))
        {
            foreach (var b in Seq(bars, "bars"))
            {
                var bm = Keys(Map(b, "bars[]"), "bars[]", "index", "size", "type", "prefetchable");
                var indexNode = Required(bm, b, "index");
                var index = Int(indexNode, "bars[].index");
                if (index < 0 || index > 5) throw Error(indexNode, "bars[].index", "a BAR index is 0..5");
                if (regions.Any(r => r.Index == index)) throw Error(indexNode, "bars[].index", $"BAR {index} is defined twice");
                var type = BarType.Mem64;
                if (bm.TryGetValue("type", out var t))
                    type = Str(t, "bars[].type") switch
                    {
                        "mem32" => BarType.Mem32,
                        "mem64" => BarType.Mem64,
                        "io" => BarType.Io,
                        var other => throw Error(t, "bars[].type", $"unknown BAR type '{other}' (mem32, mem64, io)"),
                    };
                var pref = bm.TryGetValue("prefetchable", out var p) && Bool(p, "bars[].prefetchable");
                regions.Add(new RegionSpec(index, Number(Required(bm, b, "size"), "bars[].size"), type, pref));
            }
        }
        if (m.TryGetValue("regions", out var regs))
        {
            if (driver != VfioDriver.NvgraceGpu) throw Error(regs, "regions", "only nvgrace-gpu devices have usemem/resmem regions");
            var rm = Keys(Map(regs, "regions"), "regions", "usemem", "resmem");
            foreach (var (key, index) in new[] { ("usemem", VfioRegionIndex.NvgraceUsemem), ("resmem", VfioRegionIndex.NvgraceResmem) })
            {
                if (!rm.TryGetValue(key, out var r)) continue;
                var sm = Keys(Map(r, $"regions.{key}"), $"regions.{key}", "size");
                if (regions.Any(x => x.Index == index)) throw Error(r, $"regions.{key}", $"BAR {index} is already defined");
                regions.Add(new RegionSpec(index, Number(Required(sm, r, "size"), $"regions.{key}.size"), BarType.Mem64, true));
            }
        }
        return new DeviceSpec(name, driver, regions, (int)node.Start.Line);
    }

    private VmSpec ParseVm(YamlNode node)
    {
        var m = Keys(Map(node, "vms[]"), "vms[]", "name", "ram", "ipa-bits", "mte", "nisv-to-user");
        var name = NewName(Required(m, node, "name"), "vms[].name", _vms, stream: true);
        var ipaBits = m.TryGetValue("ipa-bits", out var ipaNode) ? Int(ipaNode, "vms[].ipa-bits") : 0;
        var mte = m.TryGetValue("mte", out var mteNode) && Bool(mteNode, "vms[].mte");
        var nisvToUser = m.TryGetValue("nisv-to-user", out var nisvNode) && Bool(nisvNode, "vms[].nisv-to-user");
        // What KVM_CREATE_VM and KVM_ENABLE_CAP(KVM_CAP_ARM_MTE) would refuse, the VMM could not start with.
        var (vm, errno, refusedMte) = KvmVmDecider.CreateVm(name, ipaBits, mte, _cpuMte, nisvToUser);
        if (errno != Errno.None)
            throw refusedMte
                ? Error(mteNode!, "vms[].mte", $"KVM_CAP_ARM_MTE needs a CPU with MTE (cpu: {{ mte: true }}): KVM_ENABLE_CAP fails with -{errno}")
                : Error(ipaNode!, "vms[].ipa-bits", $"{ipaBits} is not an IPA size KVM_CREATE_VM takes ({KvmVm.MinIpaBits}..{KvmVm.IpaLimit}, or 0 for {KvmVm.DefaultIpaBits}): -{errno}");
        if (!m.TryGetValue("ram", out var ram)) return new VmSpec(name, 0, 0, false, (int)node.Start.Line, vm!.IpaBits, mte, nisvToUser);
        var rm = Keys(Map(ram, "ram"), "ram", "gpa", "size");
        return new VmSpec(name, Number(Required(rm, ram, "gpa"), "ram.gpa"), Number(Required(rm, ram, "size"), "ram.size"), true, (int)node.Start.Line,
            vm!.IpaBits, mte, nisvToUser);
    }

    private Step ParseStep(YamlNode node, int n)
    {
        var outer = Map(node, "steps[]");
        if (outer.Children.Count != 1) throw Error(node, "steps[]", "each step is a mapping with exactly one key");
        var (keyNode, body) = outer.Children.Single();
        var kind = Str(keyNode, "steps[]");
        var line = (int)keyNode.Start.Line;
        switch (kind)
        {
            case "mmap":
            {
                var m = Keys(Map(body, "mmap"), "mmap", "name", "device", "region", "offset", "size", "shared", "prot", "hva");
                var name = NewName(Required(m, body, "name"), "mmap.name", _mappings);
                var device = KnownName(Required(m, body, "device"), "mmap.device", _devices);
                var regionNode = Required(m, body, "region");
                var region = Region(regionNode, device);
                var prot = m.TryGetValue("prot", out var p) ? ProtOf(p, "mmap.prot") : Prot.Read | Prot.Write;
                return new MmapStep(n, line, name, device, region, m.TryGetValue("offset", out var o) ? Number(o, "mmap.offset") : 0,
                    Number(Required(m, body, "size"), "mmap.size"), !m.TryGetValue("shared", out var sh) || Bool(sh, "mmap.shared"), prot,
                    m.TryGetValue("hva", out var h) ? Number(h, "mmap.hva") : null);
            }
            case "memslot":
            {
                var m = Keys(Map(body, "memslot"), "memslot", "vm", "slot", "gpa", "size", "backing", "flags");
                var backingNode = Required(m, body, "backing");
                var backing = Str(backingNode, "memslot.backing");
                if (backing != "ram") KnownName(backingNode, "memslot.backing", _mappings);
                var flags = MemslotFlags.None;
                if (m.TryGetValue("flags", out var fl))
                    foreach (var f in Seq(fl, "memslot.flags"))
                        flags |= Str(f, "memslot.flags") switch
                        {
                            "log-dirty-pages" => MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES,
                            "readonly" => MemslotFlags.KVM_MEM_READONLY,
                            var other => throw Error(f, "memslot.flags", $"unknown flag '{other}' (log-dirty-pages, readonly)"),
                        };
                return new MemslotStep(n, line, KnownName(Required(m, body, "vm"), "memslot.vm", _vms), Int(Required(m, body, "slot"), "memslot.slot"),
                    Number(Required(m, body, "gpa"), "memslot.gpa"), Number(Required(m, body, "size"), "memslot.size"), backing, flags);
            }
            case "access":
            {
                var m = Keys(Map(body, "access"), "access", "vm", "vcpu", "gpa", "op", "s1", "retry", "nisv", "s1ptw", "cm");
                var opNode = Required(m, body, "op");
                var op = Str(opNode, "access.op") switch
                {
                    "read" => AccessOp.Read,
                    "write" => AccessOp.Write,
                    "exec" => AccessOp.Exec,
                    var other => throw Error(opNode, "access.op", $"unknown op '{other}' (read, write, exec)"),
                };
                var s1 = m.TryGetValue("s1", out var s1Node) ? MemTypeOf(s1Node, "access.s1") : MemType.NormalWB;
                var vcpu = m.TryGetValue("vcpu", out var v) ? Int(v, "access.vcpu") : 0;
                if (vcpu < 0 || vcpu > 511) throw Error(v!, "access.vcpu", "vCPUs are numbered 0..511");
                return new AccessStep(n, line, KnownName(Required(m, body, "vm"), "access.vm", _vms), vcpu,
                    Number(Required(m, body, "gpa"), "access.gpa"), op, s1, !m.TryGetValue("retry", out var r) || Bool(r, "access.retry"),
                    SyndromeOf(m, op));
            }
            case "device":
            {
                var m = Keys(Map(body, "device"), "device", "name", "memory", "reset", "power");
                var device = KnownName(Required(m, body, "name"), "device.name", _devices);
                bool? memory = null;
                if (m.TryGetValue("memory", out var mem))
                    memory = Str(mem, "device.memory") switch
                    {
                        "enabled" => true,
                        "disabled" => false,
                        var other => throw Error(mem, "device.memory", $"'{other}' is not enabled or disabled"),
                    };
                var reset = m.TryGetValue("reset", out var rs) && Bool(rs, "device.reset");
                PciPowerState? power = null;
                if (m.TryGetValue("power", out var pw))
                    power = Str(pw, "device.power") switch
                    {
                        "D0" => PciPowerState.D0,
                        "D3hot" => PciPowerState.D3Hot,
                        var other => throw Error(pw, "device.power", $"'{other}' is not D0 or D3hot"),
                    };
                if ((memory is null ? 0 : 1) + (reset ? 1 : 0) + (power is null ? 0 : 1) != 1)
                    throw Error(body, "device", "give exactly one of memory, reset: true, power");
                return new DeviceStep(n, line, device, memory, reset, power);
            }
            case "munmap":
            {
                var m = Keys(Map(body, "munmap"), "munmap", "name", "offset", "size");
                return new MunmapStep(n, line, KnownName(Required(m, body, "name"), "munmap.name", _mappings),
                    m.TryGetValue("offset", out var o) ? Number(o, "munmap.offset") : null, m.TryGetValue("size", out var s) ? Number(s, "munmap.size") : null);
            }
            case "mprotect":
            {
                var m = Keys(Map(body, "mprotect"), "mprotect", "name", "prot", "offset", "size");
                return new MprotectStep(n, line, KnownName(Required(m, body, "name"), "mprotect.name", _mappings), ProtOf(Required(m, body, "prot"), "mprotect.prot"),
                    m.TryGetValue("offset", out var o) ? Number(o, "mprotect.offset") : null, m.TryGetValue("size", out var s) ? Number(s, "mprotect.size") : null);
            }
            case "delete-memslot":
            {
                var m = Keys(Map(body, "delete-memslot"), "delete-memslot", "vm", "slot");
                return new DeleteMemslotStep(n, line, KnownName(Required(m, body, "vm"), "delete-memslot.vm", _vms), Int(Required(m, body, "slot"), "delete-memslot.slot"));
            }
            case "vgic-v2":
            {
                var m = Keys(Map(body, "vgic-v2"), "vgic-v2", "vm", "cpu");
                return new VgicV2Step(n, line, KnownName(Required(m, body, "vm"), "vgic-v2.vm", _vms), Number(Required(m, body, "cpu"), "vgic-v2.cpu"));
            }
            case "expect":
                return ParseExpect(body, n, line);
            default:
                throw Error(keyNode, "steps[]", $"unknown step '{kind}' (mmap, memslot, access, device, munmap, mprotect, delete-memslot, vgic-v2, expect)");
        }
    }

    private Expect ParseExpect(YamlNode body, int n, int line)
    {
        var m = Keys(Map(body, "expect"), "expect", "mmap", "errno", "result", "vma", "flags", "not-flags", "smaps", "memslot",
            "access", "vm", "gpa", "s2", "memattr", "xn", "writable", "effective", "invariants", "step");
        Errno ErrnoOrOk(string what)
        {
            var hasErrno = m.TryGetValue("errno", out var e);
            var hasResult = m.TryGetValue("result", out var r);
            if (hasErrno == hasResult) throw Error(body, "expect", $"{what}: give errno or result: ok");
            if (hasResult)
            {
                if (Str(r!, "expect.result") != "ok") throw Error(r!, "expect.result", "only 'ok' here");
                return Errno.None;
            }
            return ErrnoOf(e!, "expect.errno");
        }
        void Only(params string[] keys)
        {
            foreach (var k in m.Keys)
                if (!keys.Contains(k)) throw Error(body, $"expect.{k}", "does not go with the other keys of this expectation");
        }
        if (m.TryGetValue("mmap", out var mm))
        {
            Only("mmap", "errno", "result");
            return new ExpectMmap(n, line, KnownName(mm, "expect.mmap", _mappings), ErrnoOrOk("expect mmap"));
        }
        if (m.TryGetValue("vma", out var vma))
        {
            Only("vma", "flags", "not-flags", "smaps");
            return new ExpectVma(n, line, KnownName(vma, "expect.vma", _mappings),
                m.TryGetValue("flags", out var f) ? FlagsOf(f, "expect.flags") : 0,
                m.TryGetValue("not-flags", out var nf) ? FlagsOf(nf, "expect.not-flags") : 0,
                m.TryGetValue("smaps", out var s) ? Str(s, "expect.smaps") : null);
        }
        if (m.TryGetValue("memslot", out var ms))
        {
            Only("memslot", "errno", "result");
            var sm = Keys(Map(ms, "expect.memslot"), "expect.memslot", "vm", "slot");
            return new ExpectMemslot(n, line, KnownName(Required(sm, ms, "vm"), "expect.memslot.vm", _vms), Int(Required(sm, ms, "slot"), "expect.memslot.slot"), ErrnoOrOk("expect memslot"));
        }
        if (m.TryGetValue("access", out var acc))
        {
            Only("access", "result", "errno");
            if (Str(acc, "expect.access") != "last") throw Error(acc, "expect.access", "only 'last' is supported");
            var rNode = Required(m, body, "result");
            var result = Str(rNode, "expect.result") switch
            {
                "mapped" => FaultResult.Mapped,
                "retry" => FaultResult.Retry,
                "guest-abort" => FaultResult.GuestAbort,
                "mmio-exit" => FaultResult.MmioExit,
                "error" => FaultResult.Error,
                "skipped" => FaultResult.InstructionSkipped,
                "nisv-exit" => FaultResult.NisvExit,
                var other => throw Error(rNode, "expect.result", $"unknown result '{other}' (mapped, retry, guest-abort, mmio-exit, nisv-exit, skipped, error)"),
            };
            Errno? errno = m.TryGetValue("errno", out var e) ? ErrnoOf(e, "expect.errno") : null;
            if (result == FaultResult.Error && errno is null) throw Error(body, "expect.errno", "result: error needs an errno");
            return new ExpectAccess(n, line, result, errno);
        }
        if (m.TryGetValue("vm", out var vmNode))
        {
            Only("vm", "gpa", "s2", "memattr", "xn", "writable", "effective");
            var s2Node = Required(m, body, "s2");
            var s2Text = Str(s2Node, "expect.s2");
            MemType? s2 = s2Text == "unmapped" ? null : MemTypeOf(s2Node, "expect.s2");
            byte? memattr = null;
            if (m.TryGetValue("memattr", out var ma))
            {
                var v = Number(ma, "expect.memattr");
                if (v > 0xF) throw Error(ma, "expect.memattr", "MemAttr is 4 bits (0x0..0xf)");
                memattr = (byte)v;
            }
            return new ExpectStage2(n, line, KnownName(vmNode, "expect.vm", _vms), Number(Required(m, body, "gpa"), "expect.gpa"), s2, memattr,
                m.TryGetValue("xn", out var xn) ? Bool(xn, "expect.xn") : null,
                m.TryGetValue("writable", out var w) ? Bool(w, "expect.writable") : null,
                m.TryGetValue("effective", out var ef) ? MemTypeOf(ef, "expect.effective") : null);
        }
        if (m.TryGetValue("invariants", out var inv))
        {
            Only("invariants");
            if (Str(inv, "expect.invariants") != "hold") throw Error(inv, "expect.invariants", "only 'hold'");
            return new ExpectInvariants(n, line);
        }
        if (m.TryGetValue("step", out var st))
        {
            Only("step", "errno", "result");
            if (Str(st, "expect.step") != "last") throw Error(st, "expect.step", "only 'last' is supported");
            return new ExpectLastStep(n, line, ErrnoOrOk("expect step"));
        }
        throw Error(body, "expect", "unknown expectation (mmap, vma, memslot, access, vm, invariants, step)");
    }

    // ---- node helpers ----

    private YamlMappingNode Map(YamlNode node, string field) =>
        node as YamlMappingNode ?? throw Error(node, field, "expected a mapping");

    private IEnumerable<YamlNode> Seq(YamlNode node, string field) =>
        node as YamlSequenceNode ?? throw Error(node, field, "expected a list");

    private Dictionary<string, YamlNode> Keys(YamlMappingNode map, string field, params string[] allowed)
    {
        var d = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            var key = Str(k, field);
            if (!allowed.Contains(key)) throw Error(k, $"{field}.{key}", $"unknown key (allowed: {string.Join(", ", allowed)})");
            if (!d.TryAdd(key, v)) throw Error(k, $"{field}.{key}", "key given twice");
        }
        return d;
    }

    private YamlNode Required(Dictionary<string, YamlNode> m, YamlNode parent, string key) =>
        m.TryGetValue(key, out var v) ? v : throw Error(parent, key, "required");

    private string Str(YamlNode node, string field) =>
        node is YamlScalarNode { Value: { } s } ? s : throw Error(node, field, "expected a scalar");

    /// <summary>An access's syndrome bits (kvm_handle_guest_abort reads them from ESR_EL2): <c>nisv</c> and
    /// <c>cm</c> are a data abort's (ESR_ELx_ISV, ESR_ELx_CM); a cache maintenance abort never has a valid
    /// syndrome, so <c>cm</c> sets <c>nisv</c> too; <c>s1ptw</c> (ESR_ELx_S1PTW) can be any access's walk.</summary>
    private AbortSyndrome SyndromeOf(Dictionary<string, YamlNode> m, AccessOp op)
    {
        var s = AbortSyndrome.None;
        m.TryGetValue("nisv", out var nisvNode);
        if (nisvNode is not null && Bool(nisvNode, "access.nisv"))
        {
            if (op == AccessOp.Exec) throw Error(nisvNode, "access.nisv", "an instruction fetch has no syndrome to lack: nisv is for op read or write");
            s |= AbortSyndrome.Nisv;
        }
        if (m.TryGetValue("cm", out var cmNode) && Bool(cmNode, "access.cm"))
        {
            if (op == AccessOp.Exec) throw Error(cmNode, "access.cm", "an instruction fetch is not cache maintenance: cm is for op read (a clean) or write (an invalidate)");
            if (nisvNode is not null && (s & AbortSyndrome.Nisv) == 0) throw Error(nisvNode, "access.nisv", "a cache maintenance abort has no valid syndrome: nisv cannot be false with cm");
            s |= AbortSyndrome.Cm | AbortSyndrome.Nisv;
        }
        if (m.TryGetValue("s1ptw", out var walkNode) && Bool(walkNode, "access.s1ptw")) s |= AbortSyndrome.S1ptw;
        return s;
    }

    private bool Bool(YamlNode node, string field) => Str(node, field) switch
    {
        "true" => true,
        "false" => false,
        var other => throw Error(node, field, $"'{other}' is not true or false"),
    };

    private int Int(YamlNode node, string field)
    {
        var v = Number(node, field);
        return v <= int.MaxValue ? (int)v : throw Error(node, field, "too large");
    }

    /// <summary>Integers, 0x hex, or sizes with a unit (4KiB, 2MiB, 1GiB).</summary>
    private ulong Number(YamlNode node, string field)
    {
        var s = Str(node, field).Trim();
        if (TryNumber(s, out var v)) return v;
        if (NumberShape().IsMatch(s)) throw Error(node, field, $"'{s}' is out of range (at most 0xffffffffffffffff, a 64-bit address)");
        throw Error(node, field, $"'{s}' is not a number (integer, 0x hex, or a size such as 4KiB, 2MiB, 1GiB)");
    }

    /// <summary>What <see cref="TryNumber"/> reads when the value fits: digits or 0x hex digits, then a unit.</summary>
    [System.Text.RegularExpressions.GeneratedRegex("^(0[xX][0-9a-fA-F_]+|[0-9_]+)(KiB|MiB|GiB|TiB)?$")]
    private static partial System.Text.RegularExpressions.Regex NumberShape();

    public static bool TryNumber(string s, out ulong value)
    {
        value = 0;
        ulong unit = 1;
        foreach (var (suffix, mult) in new[] { ("KiB", 1UL << 10), ("MiB", 1UL << 20), ("GiB", 1UL << 30), ("TiB", 1UL << 40) })
            if (s.EndsWith(suffix, StringComparison.Ordinal)) { unit = mult; s = s[..^suffix.Length]; break; }
        bool ok;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            ok = ulong.TryParse(s.AsSpan(2).ToString().Replace("_", ""), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && s.Length > 2;
        else
            ok = ulong.TryParse(s.Replace("_", ""), NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (!ok) return false;
        if (unit > 1)
        {
            if (value > ulong.MaxValue / unit) return false;
            value *= unit;
        }
        return true;
    }

    /// <param name="stream">A device's or VM's name, which its event stream's name holds
    /// (vfio-NAME, kvm-NAME): no '/', which an event log's stream may not hold (a VM named "a/b" ran, and
    /// its export could not be read back: "stream: empty or contains '/'").</param>
    private string NewName(YamlNode node, string field, HashSet<string> names, bool stream = false)
    {
        var n = Str(node, field);
        if (n.Length == 0) throw Error(node, field, "empty name");
        if (stream && n.Contains('/'))
            throw Error(node, field, $"name '{n}' holds a '/': it names the event stream (vfio-NAME, kvm-NAME), which cannot hold one");
        if (!names.Add(n)) throw Error(node, field, $"name '{n}' is defined twice");
        return n;
    }

    private string KnownName(YamlNode node, string field, HashSet<string> names)
    {
        var n = Str(node, field);
        return names.Contains(n) ? n : throw Error(node, field, $"unknown name '{n}'");
    }

    private int Region(YamlNode node, string device)
    {
        var s = Str(node, "mmap.region");
        if (s is "usemem" or "resmem")
        {
            if (_driverOf[device] != VfioDriver.NvgraceGpu) throw Error(node, "mmap.region", $"'{s}' is a region of nvgrace-gpu devices only");
            return s == "usemem" ? VfioRegionIndex.NvgraceUsemem : VfioRegionIndex.NvgraceResmem;
        }
        return Int(node, "mmap.region");
    }

    private Prot ProtOf(YamlNode node, string field)
    {
        var p = Prot.None;
        foreach (var x in Seq(node, field))
            p |= Str(x, field) switch
            {
                "read" => Prot.Read,
                "write" => Prot.Write,
                "exec" => Prot.Exec,
                "none" => Prot.None,
                var other => throw Error(x, field, $"unknown protection '{other}' (read, write, exec)"),
            };
        return p;
    }

    private VmFlags FlagsOf(YamlNode node, string field)
    {
        var f = VmFlags.VM_NONE;
        foreach (var x in Seq(node, field))
        {
            var name = Str(x, field);
            if (!VmFlagBits.TryParse(name, out var flag)) throw Error(x, field, $"unknown flag '{name}'");
            f |= flag;
        }
        return f;
    }

    private MemType MemTypeOf(YamlNode node, string field)
    {
        var s = Str(node, field);
        return MemTypeNames.TryParse(s, out var t) ? t
            : throw Error(node, field, $"unknown memory type '{s}' (Device-nGnRnE, Device-nGnRE, Device-nGRE, Device-GRE, Normal-NC, Normal-WT, Normal-WB)");
    }

    private Errno ErrnoOf(YamlNode node, string field)
    {
        var s = Str(node, field);
        return ErrnoNames.TryParse(s, out var e) ? e : throw Error(node, field, $"unknown errno '{s}'");
    }
}
