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
        return events.Items.Select(e => $"{e.Stream} {e.Time} {e.Event}").ToArray();
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
    public async Task Virtual_time_starts_at_the_epoch_and_moves_only_when_advanced_while_timers_run_on_the_wall_clock()
    {
        using var system = ActorSystem.Create("clock", SimHost.BaseConfig(deterministic: true));
        var scheduler = Assert.IsType<VirtualClockScheduler>(system.Scheduler);
        Assert.Equal(DateTimeOffset.UnixEpoch.UtcTicks, SimClock.Now(system));
        var fired = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(50), () => fired.SetResult(SimClock.Now(system)));
        Assert.Equal(DateTimeOffset.UnixEpoch.UtcTicks, await fired.Task.WaitAsync(TimeSpan.FromSeconds(10))); // fired, and time stood still
        SimClock.Advance(system, TimeSpan.FromMilliseconds(3));
        scheduler.Advance(TimeSpan.FromTicks(5));
        Assert.Equal(DateTimeOffset.UnixEpoch.UtcTicks + 3 * TimeSpan.TicksPerMillisecond + 5, SimClock.Now(system));
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.Advance(TimeSpan.FromTicks(-1)));
        await system.Terminate();

        using var realTime = ActorSystem.Create("wall", SimHost.BaseConfig(deterministic: false));
        Assert.IsNotType<VirtualClockScheduler>(realTime.Scheduler);
        SimClock.Advance(realTime, TimeSpan.FromDays(1)); // nothing to move
        Assert.InRange(SimClock.Now(realTime), DateTimeOffset.UtcNow.AddMinutes(-1).UtcTicks, DateTimeOffset.UtcNow.AddMinutes(1).UtcTicks);
        await realTime.Terminate();
    }

    /// <summary>In a deterministic scenario each step takes a millisecond of virtual time: the set-up's
    /// events are at the epoch, a step's events at its number in milliseconds.</summary>
    [Fact]
    public async Task A_deterministic_scenario_stamps_each_steps_events_with_the_steps_time()
    {
        var s = ScenarioParser.ParseFile(Path.Combine(AppContext.BaseDirectory, "scenarios", "o06-memory-disable-and-enable.yaml"));
        var r = await ScenarioRunner.RunAsync(s, deterministic: true);
        Assert.True(r.Results.All(x => x.Passed));
        long Ms(DomainEventPublished e) => (e.Time - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMillisecond;
        Assert.All(r.Events, e => Assert.Equal(0, (e.Time - DateTimeOffset.UnixEpoch.UtcTicks) % TimeSpan.TicksPerMillisecond));
        Assert.True(r.Events.Zip(r.Events.Skip(1)).All(p => p.Item1.Time <= p.Item2.Time), "times go back");
        // Steps 1 and 2 mmap; step 5 is the first access; step 8 disables gpu0's memory.
        Assert.Equal(1, Ms(r.Events.First(e => e.Event is Domain.Mm.VmaMapped)));
        Assert.Equal(5, Ms(r.Events.First(e => e.Event is Domain.Kvm.Stage2FaultResolved or Domain.Kvm.Stage2FaultsResolved)));
        Assert.Equal(8, Ms(r.Events.First(e => e.Event is Domain.Vfio.VfioMemoryToggled)));
        Assert.InRange(Ms(r.Events[^1]), 8, s.Steps.Count);
    }

    [Fact]
    public async Task Another_seed_gives_another_sequence()
    {
        var a = await Run(7, deterministic: true);
        var b = await Run(8, deterministic: true);
        Assert.False(a.SequenceEqual(b));
    }
}
