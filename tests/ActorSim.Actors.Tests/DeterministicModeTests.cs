using ActorSim.Actors.Scenarios;
using ActorSim.Domain.Kernel;
using Akka.Actor;

namespace ActorSim.Actors.Tests;

/// <summary>With a seed and one dispatcher thread for every actor and the journal, two runs of the
/// same concurrent workload persist the same events in the same order.</summary>
public class DeterministicModeTests
{
    private static async Task<string[]> Run(int seed, bool deterministic)
    {
        using var system = ActorSystem.Create("det", SimHost.BaseConfig(deterministic));
        var recorder = system.ActorOf(Props.Create(() => new EventRecorder()));
        await recorder.Ask<EventRecorder.Events>(new EventRecorder.Get());
        var policy = KernelPolicy.Of("6.9");
        var host = await SimHost.StartAsync(system, "det", policy, SeededWorkload.Devices(), SeededWorkload.Vms(3));
        var w = await SeededWorkload.SetUpAsync(host, seed, vms: 3, vcpus: 4);
        for (var i = 0; i < 60; i++) await w.RoundAsync();
        var events = await recorder.Ask<EventRecorder.Events>(new EventRecorder.Get());
        Assert.Empty((await host.Ask<Violations>(host.Checker, new GetViolations())).Items);
        await system.Terminate();
        return events.Items.Select(e => $"{e.Stream} {e.Event}").ToArray();
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_event_sequence_twice()
    {
        var a = await Run(7, deterministic: true);
        var b = await Run(7, deterministic: true);
        Assert.True(a.Length > 300, $"only {a.Length} events"); // a fault batch is one event per stream
        Assert.Contains(a, e => e.Contains("MmuInvalidateBegan")); // the workload does race zaps against faults
        Assert.Equal(a.Length, b.Length);
        for (var i = 0; i < a.Length; i++) Assert.True(a[i] == b[i], $"event {i + 1} differs:\n{a[i]}\n{b[i]}");
    }

    [Fact]
    public async Task Another_seed_gives_another_sequence()
    {
        var a = await Run(7, deterministic: true);
        var b = await Run(8, deterministic: true);
        Assert.False(a.SequenceEqual(b));
    }
}
