using ActorSim.Actors.Scenarios;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;

namespace ActorSim.Actors.Tests;

/// <summary>Invalid scenario files: the error names the file, the line and the field.</summary>
public class ScenarioParserTests
{
    private const string Head = """
        name: t
        kernel: "6.9"
        devices:
          - name: gpu0
            driver: vfio-pci
            bars: [ { index: 0, size: 16MiB } ]
        vms:
          - name: vm1
        steps:

        """;

    private static ScenarioFormatException Bad(string text) =>
        Assert.Throws<ScenarioFormatException>(() => ScenarioParser.Parse(text, "t.yaml"));

    [Theory]
    [InlineData("  - mmap: { name: m, device: gpu0, region: 0, size: 4KiB, colour: red }", 10, "mmap.colour")]
    [InlineData("  - mmap: { name: m, device: gpu9, region: 0, size: 4KiB }", 10, "mmap.device")]
    [InlineData("  - mmap: { name: m, device: gpu0, region: 0, size: 4 KB }", 10, "mmap.size")]
    [InlineData("  - mmap: { name: m, device: gpu0, region: 0, size: 0xZZ }", 10, "mmap.size")]
    [InlineData("  - mmap: { name: m, device: gpu0, region: usemem, size: 4KiB }", 10, "mmap.region")]
    [InlineData("  - munmap: { name: nothing }", 10, "munmap.name")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: fetch }", 10, "access.op")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: read, s1: Normal-XX }", 10, "access.s1")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: exec, nisv: true }", 10, "access.nisv")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: write, nisv: maybe }", 10, "access.nisv")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: exec, cm: true }", 10, "access.cm")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: read, cm: true, nisv: false }", 10, "access.nisv")]
    [InlineData("  - access: { vm: vm1, gpa: 0x1000, op: read, s1ptw: 1 }", 10, "access.s1ptw")]
    [InlineData("  - expect: { access: last, result: skip }", 10, "expect.result")]
    [InlineData("  - expect: { vm: vm1, gpa: 0x1000, s2: Normal-NC, memattr: 0x10 }", 10, "expect.memattr")]
    [InlineData("  - expect: { access: last, result: error }", 10, "expect.errno")]
    [InlineData("  - expect: { mmap: nothing, result: ok }", 10, "expect.mmap")]
    [InlineData("  - expect: { access: last, result: mapped, vm: vm1 }", 10, "expect.vm")]
    [InlineData("  - teleport: { vm: vm1 }", 10, "steps[]")]
    [InlineData("  - device: { name: gpu0 }", 10, "device")]
    [InlineData("  - memslot: { vm: vm1, slot: 1, gpa: 0x0, size: 4KiB, backing: nowhere }", 10, "memslot.backing")]
    [InlineData("  - vgic-v2: { vm: vm9, cpu: 0x8010000 }", 10, "vgic-v2.vm")]
    [InlineData("  - vgic-v2: { vm: vm1, cpu: GICC }", 10, "vgic-v2.cpu")]
    [InlineData("  - vgic-v2: { vm: vm1, cpu: 0x8010000, dist: 0x8000000 }", 10, "vgic-v2.dist")]
    [InlineData("  - vgic-v2: { vm: vm1 }", 10, "cpu")] // a missing key is named as every step names it
    public void A_bad_step_names_its_line_and_field(string step, int line, string field)
    {
        var e = Bad(Head + step + "\n");
        Assert.Equal(("t.yaml", line, field), (e.File, e.Line, e.Field));
        Assert.StartsWith($"t.yaml:{line}: {field}: ", e.Message);
    }

    /// <summary>YAML nested past <see cref="ScenarioParser.MaxDepth"/> is refused where the level opens,
    /// before YamlDotNet loads it: 100,000 nested flow lists or mappings overflowed its recursion's stack
    /// and ended the process (exit 134); block mappings indented past it too. 64 levels still load.</summary>
    [Theory]
    [InlineData("name: ", "[", "]", 1)]
    [InlineData("name: t\nsteps: ", "{a: ", "}", 2)]
    public void Yaml_nested_deeper_than_the_limit_is_an_error_at_its_line_not_a_stack_overflow(string head, string open, string close, int line)
    {
        var deep = head + string.Concat(Enumerable.Repeat(open, 100_000)) + "1" + string.Concat(Enumerable.Repeat(close, 100_000)) + "\n";
        var e = Bad(deep);
        Assert.Equal(("yaml", line), (e.Field, e.Line));
        Assert.EndsWith($"nested deeper than {ScenarioParser.MaxDepth} levels", e.Message);
        // At the limit (the root mapping is a level): loaded, and refused for what it is, not for its depth.
        var limit = ScenarioParser.MaxDepth - 1;
        var at = head + string.Concat(Enumerable.Repeat(open, limit)) + "1" + string.Concat(Enumerable.Repeat(close, limit)) + "\n";
        Assert.DoesNotContain("nested deeper", Bad(at).Message);
        var block = "name: t\nkernel: \"6.9\"\ndeep:\n" + string.Concat(Enumerable.Range(1, 100).Select(i => new string(' ', i) + "k:\n"));
        Assert.Equal(("yaml", 3 + ScenarioParser.MaxDepth), (Bad(block).Field, Bad(block).Line));
    }

    [Fact]
    public void Duplicate_names_are_errors()
    {
        Assert.Equal("mmap.name", Bad(Head + "  - mmap: { name: m, device: gpu0, region: 0, size: 4KiB }\n  - mmap: { name: m, device: gpu0, region: 0, size: 4KiB }\n").Field);
        var e = Bad("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n  - name: vm1\n");
        Assert.Equal(("vms[].name", 5), (e.Field, e.Line));
    }

    [Theory]
    [InlineData("kernel: \"6.9\"\n", "name", 1)]
    [InlineData("name: t\nkernel: \"5.10\"\n", "kernel", 2)]
    [InlineData("name: t\nkernel: \"6.9\"\ncolour: red\n", "scenario.colour", 3)]
    [InlineData("name: t\nkernel: \"6.9\"\nword-size: 32\nvms:\n  - name: vm1\n", "word-size", 3)]
    [InlineData("name: t\nkernel: \"6.9\"\nword-size: 16\n", "word-size", 3)]
    [InlineData("name: t\nkernel: \"6.9\"\ncpu: { fwb: maybe }\n", "cpu.fwb", 3)]
    [InlineData("name: t\nkernel: \"6.9\"\ncpu: { mte: 1 }\n", "cpu.mte", 3)]
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n    mte: true\n", "vms[].mte", 5)] // KVM_CAP_ARM_MTE needs cpu.mte
    [InlineData("name: t\nkernel: \"6.9\"\ncpu: { mte: false }\nvms:\n  - { name: vm1, mte: true }\n", "vms[].mte", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\ncpu: { mte: true }\nvms:\n  - { name: vm1, mte: yes }\n", "vms[].mte", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n    ipa-bits: 31\n", "vms[].ipa-bits", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n    ipa-bits: 49\n", "vms[].ipa-bits", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n    ipa-bits: 40KiB\n", "vms[].ipa-bits", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n    nisv-to-user: on\n", "vms[].nisv-to-user", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\nsteps:\n  - access: { vm: vm1, gpa: 0x1000, op: read }\n  - expect: { access: last, result: nisv }\n", "expect.result", 7)]
    [InlineData("name: t\nkernel: \"6.9\"\ndevices:\n  - { name: d, driver: vfio-gpu }\n", "driver", 4)]
    [InlineData("name: t\nkernel: \"6.9\"\ndevices:\n  - { name: a/b, driver: vfio-pci }\n", "devices[].name", 4)] // a stream's name: no '/'
    [InlineData("name: t\nkernel: \"6.9\"\nvms:\n  - name: vm1\n  - name: a/b\n", "vms[].name", 5)]
    [InlineData("name: t\nkernel: \"6.9\"\nsteps: [ { mmap: { name: x\n", "yaml", 4)] // unclosed: found at the end of the input
    [InlineData("- just\n- a list\n", "document", 1)]
    [InlineData("# a comment\n\n- a list after it\n", "document", 3)]
    [InlineData("", "document", 1)]
    [InlineData("name: t\nkernel: \"6.9\"\n---\nname: u\nkernel: \"6.9\"\n", "document", 4)] // the second document's first line
    public void Bad_top_level_input_names_its_line_and_field(string text, string field, int line)
    {
        var e = Bad(text);
        Assert.Equal((field, line), (e.Field, e.Line));
    }

    [Theory]
    [InlineData("4096", 4096UL)]
    [InlineData("0x1000", 4096UL)]
    [InlineData("4KiB", 4096UL)]
    [InlineData("2MiB", 2UL << 20)]
    [InlineData("1GiB", 1UL << 30)]
    [InlineData("0x8000_0000", 0x8000_0000UL)]
    public void Numbers_are_integers_hex_or_sizes(string text, ulong value)
    {
        Assert.True(ScenarioParser.TryNumber(text, out var v));
        Assert.Equal(value, v);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("4kib")]
    [InlineData("0x")]
    [InlineData("99999999999999999999GiB")]
    public void Non_numbers_are_refused(string text) => Assert.False(ScenarioParser.TryNumber(text, out _));

    [Theory]
    [InlineData("0x10000000000000000", "is out of range")]
    [InlineData("99999999999GiB", "is out of range")]
    [InlineData("18446744073709551616", "is out of range")]
    [InlineData("-1", "is not a number")]
    [InlineData("0x1g", "is not a number")]
    public void A_number_too_large_is_told_apart_from_one_that_is_not_a_number(string gpa, string says)
    {
        var e = Bad(Head + $"  - access: {{ vm: vm1, gpa: {gpa}, op: read }}\n");
        Assert.Equal(("access.gpa", 10), (e.Field, e.Line));
        Assert.Contains($"'{gpa}' {says}", e.Message);
    }

    [Fact]
    public void A_full_scenario_parses_with_its_defaults()
    {
        var s = ScenarioParser.Parse(Head + "  - mmap: { name: m, device: gpu0, region: 0, size: 4KiB }\n  - access: { vm: vm1, gpa: 0x1000, op: write }\n", "t.yaml");
        Assert.Equal(new CpuFeatures(true, true), s.Policy.Cpu);
        var mmap = Assert.IsType<MmapStep>(s.Steps[0]);
        Assert.True(mmap.Shared);
        Assert.Equal(Domain.Mm.Prot.Read | Domain.Mm.Prot.Write, mmap.Prot);
        var access = Assert.IsType<AccessStep>(s.Steps[1]);
        Assert.Equal((0, MemType.NormalWB, true, 11, false), (access.Vcpu, access.S1, access.Retry, access.Line, access.Nisv));
        var nisv = ScenarioParser.Parse(Head + "  - access: { vm: vm1, gpa: 0x1000, op: write, nisv: true }\n  - access: { vm: vm1, gpa: 0x1000, op: exec, nisv: false }\n", "t.yaml");
        Assert.Equal([true, false], nisv.Steps.Cast<AccessStep>().Select(x => x.Nisv));
        Assert.Equal(AbortSyndrome.None, access.Syndrome);
        // cm is a cache maintenance abort's, which has no valid syndrome: nisv comes with it.
        var bits = ScenarioParser.Parse(Head + string.Concat(
            "  - access: { vm: vm1, gpa: 0x1000, op: exec, s1ptw: true }\n",
            "  - access: { vm: vm1, gpa: 0x1000, op: read, cm: true }\n",
            "  - access: { vm: vm1, gpa: 0x1000, op: write, cm: true, nisv: true, s1ptw: true }\n",
            "  - access: { vm: vm1, gpa: 0x1000, op: read, cm: false, s1ptw: false }\n",
            "  - expect: { access: last, result: skipped }\n"), "t.yaml");
        Assert.Equal([AbortSyndrome.S1ptw, AbortSyndrome.Cm | AbortSyndrome.Nisv, AbortSyndrome.S1ptw | AbortSyndrome.Cm | AbortSyndrome.Nisv, AbortSyndrome.None],
            bits.Steps.OfType<AccessStep>().Select(x => x.Syndrome));
        Assert.Equal(FaultResult.InstructionSkipped, Assert.IsType<ExpectAccess>(bits.Steps[^1]).Result);
        Assert.False(s.CpuMte);
        Assert.Equal((KvmVm.DefaultIpaBits, false), (s.Vms[0].IpaBits, s.Vms[0].Mte));
    }

    [Fact]
    public void A_VM_takes_its_IPA_size_and_MTE_as_KVM_CREATE_VM_and_KVM_ENABLE_CAP_would()
    {
        var s = ScenarioParser.Parse("""
            name: t
            kernel: "6.9"
            cpu: { mte: true }
            vms:
              - { name: a, mte: true, ipa-bits: 32 }
              - { name: b, ipa-bits: 48 }
              - { name: c, ipa-bits: 0 }
              - { name: d, mte: false }
            """, "t.yaml");
        Assert.True(s.CpuMte);
        Assert.Equal([(32, true), (48, false), (KvmVm.DefaultIpaBits, false), (KvmVm.DefaultIpaBits, false)], s.Vms.Select(v => (v.IpaBits, v.Mte)));
        Assert.Equal((true, 32), (s.Vms[0].Create().HasMte, s.Vms[0].Create().IpaBits));
        var e = Bad("name: t\nkernel: \"6.9\"\nvms:\n  - { name: vm1, mte: true }\n");
        Assert.Equal("t.yaml:4: vms[].mte: KVM_CAP_ARM_MTE needs a CPU with MTE (cpu: { mte: true }): KVM_ENABLE_CAP fails with -EINVAL", e.Message);
        e = Bad("name: t\nkernel: \"6.9\"\nvms:\n  - { name: vm1, ipa-bits: 52 }\n");
        Assert.Equal("t.yaml:4: vms[].ipa-bits: 52 is not an IPA size KVM_CREATE_VM takes (32..48, or 0 for 40): -EINVAL", e.Message);
    }

    [Fact]
    public void A_vgic_v2_step_names_its_VM_and_CPU_interface_base()
    {
        var s = ScenarioParser.Parse(Head + "  - vgic-v2: { vm: vm1, cpu: 0x8010000 }\n", "t.yaml");
        var step = Assert.IsType<VgicV2Step>(s.Steps[^1]);
        Assert.Equal(("vm1", 0x801_0000UL, 10), (step.Vm, step.CpuBase, step.Line));
    }

    /// <summary>KVM_ENABLE_CAP(KVM_CAP_ARM_NISV_TO_USER) is a VM's <c>nisv-to-user</c>; any host takes it, an
    /// MTE VM's too. <c>nisv-exit</c> is the result its accesses without a syndrome expect.</summary>
    [Fact]
    public void A_VM_takes_KVM_CAP_ARM_NISV_TO_USER_and_an_access_can_expect_its_exit()
    {
        var s = ScenarioParser.Parse("""
            name: t
            kernel: "6.8"
            cpu: { mte: true }
            vms:
              - { name: a, nisv-to-user: true }
              - { name: b, nisv-to-user: false }
              - { name: c }
              - { name: d, mte: true, ipa-bits: 36, nisv-to-user: true }
            steps:
              - access: { vm: a, gpa: 0x1000, op: read, nisv: true }
              - expect: { access: last, result: nisv-exit }
            """, "t.yaml");
        Assert.Equal([true, false, false, true], s.Vms.Select(v => v.NisvToUser));
        Assert.Equal([true, false, false, true], s.Vms.Select(v => v.Create().NisvToUser));
        Assert.Equal((true, 36), (s.Vms[3].Create().HasMte, s.Vms[3].Create().IpaBits));
        Assert.Equal(FaultResult.NisvExit, Assert.IsType<ExpectAccess>(s.Steps[^1]).Result);
    }
}
