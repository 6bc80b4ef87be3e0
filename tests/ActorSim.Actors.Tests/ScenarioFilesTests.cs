using ActorSim.Actors.Scenarios;

namespace ActorSim.Actors.Tests;

/// <summary>Every scenario file in scenarios/ runs through the actors, in the TestKit's actor system,
/// as a test of its own.</summary>
public class ScenarioFilesTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "scenarios");

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Dir, "*.yaml").OrderBy(f => f, StringComparer.Ordinal)) data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task Scenario_file_passes(string file)
    {
        var results = await ScenarioRunner.RunAsync(Sys, ScenarioParser.ParseFile(Path.Combine(Dir, file)), runId: file);
        Assert.NotEmpty(results);
        Assert.True(results.All(x => x.Passed), string.Join("\n", results.Where(x => !x.Passed)));
    }

    [Fact]
    public void There_are_at_least_15_scenarios_covering_every_rule_set_and_driver()
    {
        var all = Directory.GetFiles(Dir, "*.yaml").Select(ScenarioParser.ParseFile).ToArray();
        Assert.True(all.Length >= 15, $"{all.Length} scenario files");
        foreach (var rules in Enum.GetValues<Domain.Kernel.RuleSet>()) Assert.Contains(all, s => s.Policy.RuleSet == rules);
        foreach (var driver in Enum.GetValues<Domain.Vfio.VfioDriver>()) Assert.Contains(all, s => s.Devices.Any(d => d.Driver == driver));
        // O1..O16 are each named by at least one file (O13 is in o10's, O16 has its own).
        foreach (var o in new[] { "o01", "o02", "o03", "o04", "o05", "o06", "o07", "o08", "o09", "o10", "o11", "o12", "o14", "o15", "o16" })
            Assert.Contains(all, s => Path.GetFileName(s.File).StartsWith(o, StringComparison.Ordinal));
    }

    /// <summary>Names are the scenario's own, whatever characters they hold ('/' aside, refused by the
    /// parser: ScenarioParserTests): a VM or a device named with a space (or any character an actor's
    /// name may not hold) ended the process unhandled (exit 134).</summary>
    [Fact]
    public async Task Devices_and_vms_may_be_named_with_any_characters_but_a_slash()
    {
        var s = ScenarioParser.Parse("""
            name: any names
            kernel: "6.9"
            devices:
              - name: "gpu 0:é\e"
                driver: vfio-pci
                bars: [ { index: 0, size: 16MiB } ]
            vms:
              - name: "my vm$%20"
            steps:
              - mmap: { name: bar0, device: "gpu 0:é\e", region: 0, size: 16MiB }
              - memslot: { vm: "my vm$%20", slot: 1, gpa: 0x8000000000, size: 16MiB, backing: bar0 }
              - access: { vm: "my vm$%20", gpa: 0x8000001000, op: read }
              - expect: { vm: "my vm$%20", gpa: 0x8000001000, s2: Normal-NC }
              - expect: { invariants: hold }
            """, "names.yaml");
        var r = await ScenarioRunner.RunAsync(s);
        Assert.Equal(2, r.Results.Count);
        Assert.All(r.Results, x => Assert.True(x.Passed, x.ToString()));
    }

    /// <summary>The same rule for a host made in code (a TestKit test): a '/' or an empty name is refused
    /// before any actor starts.</summary>
    [Theory]
    [InlineData("a/b")]
    [InlineData("")]
    public async Task A_host_refuses_a_vm_name_its_stream_cannot_hold(string name)
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() => SimHost.StartAsync(Sys, "names", ActorSim.Domain.Kernel.KernelPolicy.Of("6.9"), [], [ActorSim.Domain.Kvm.KvmVm.Create(name)]));
        Assert.Contains($"'{name}' cannot name a device or a VM", e.Message);
    }

    [Fact]
    public async Task A_wrong_expectation_fails_with_its_step_and_line()
    {
        var s = ScenarioParser.Parse("""
            name: wrong
            kernel: "6.8"
            devices:
              - name: gpu0
                driver: vfio-pci
                bars: [ { index: 0, size: 16MiB } ]
            vms:
              - name: vm1
            steps:
              - mmap: { name: bar0, device: gpu0, region: 0, size: 16MiB }
              - memslot: { vm: vm1, slot: 1, gpa: 0x8000000000, size: 16MiB, backing: bar0 }
              - access: { vm: vm1, gpa: 0x8000001000, op: read }
              - expect: { vm: vm1, gpa: 0x8000001000, s2: Normal-NC }
            """, "wrong.yaml");
        var r = await ScenarioRunner.RunAsync(s);
        var fail = Assert.Single(r.Results, x => !x.Passed);
        Assert.Equal((4, 13), (fail.Step, fail.Line));
        Assert.Contains("got s2 Device-nGnRE", fail.Text);
    }
}
