using HdrHistogram;
using ActorSim.Domain;
using ActorSim.Domain.Kvm;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>A vCPU running a sequence of guest accesses (VcpuRunSequence): one abort in flight at a
/// time, the next as soon as the last is answered, until the count or the deadline.</summary>
public class VcpuSequenceTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private const ulong RamGpa = 0x4000_0000UL;

    private async Task<SimHost> OneVmWithRam(string run)
    {
        var h = await SimHost.StartAsync(Sys, run, Policy("6.9"), [], [KvmVm.Create("vm1")]);
        var ram = await h.Ask<MmResult>(h.Mm, new MmMapRam(64 * MiB, null));
        await h.Ask<KvmResult>(h.Vm("vm1"), new KvmSetMemslot(0, MemslotFlags.None, RamGpa, 64 * MiB, ram.Hva));
        return h;
    }

    [Fact]
    public async Task A_sequence_maps_each_of_its_pages_once_in_order_and_reports_each_latency()
    {
        var h = await OneVmWithRam("seq-count");
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events, typeof(DomainEventPublished));
        h.Vcpu("vm1", 0).Tell(new VcpuRunSequence(RamGpa, 3 * 0x1000, 20, AccessOp.Write), TestActor);
        var done = ExpectMsg<VcpuSequenceDone>(TimeSpan.FromSeconds(10));
        Assert.Equal(20, done.Accesses);
        Assert.Equal(20, done.Latency.TotalCount);
        Assert.True(done.Latency.GetValueAtPercentile(0) > 0);
        Assert.True(done.Latency.GetMaxValue() < VcpuSequenceDone.MaxLatencyTicks);

        var decided = events.ReceiveWhile(TimeSpan.FromMilliseconds(300), m => (DomainEventPublished)m)
            .SelectMany(p => DecisionEvents.Of(p.Event)).Select(r => r.Inputs.Gpa).ToArray();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => RamGpa + (ulong)i * 3 * 0x1000), decided);
        var vm = await h.Ask<KvmVm>(h.Vm("vm1"), new KvmGetState());
        Assert.Equal(20, vm.Stage2.Count);
    }

    [Fact]
    public async Task A_sequence_stops_at_its_deadline_and_an_access_sent_meanwhile_runs_after_it()
    {
        var h = await OneVmWithRam("seq-until");
        var vcpu = h.Vcpu("vm1", 0);
        // One page again and again (mapped after the first): far more than 300 ms could run.
        vcpu.Tell(new VcpuRunSequence(RamGpa, 0, 100_000_000, AccessOp.Read, DateTime.UtcNow.AddMilliseconds(300)), TestActor);
        vcpu.Tell(new VcpuRunAccess(RamGpa + 60 * MiB, AccessOp.Write), TestActor);
        var done = ExpectMsg<VcpuSequenceDone>(TimeSpan.FromSeconds(10));
        Assert.InRange(done.Accesses, 1, 99_999_999);
        Assert.Equal(done.Accesses, done.Latency.TotalCount);
        Assert.Equal(RamGpa + 60 * MiB, ExpectMsg<VcpuAccessDone>(TimeSpan.FromSeconds(5)).Gpa);

        vcpu.Tell(new VcpuRunSequence(RamGpa, 0x1000, 0, AccessOp.Read), TestActor);
        var none = ExpectMsg<VcpuSequenceDone>();
        Assert.Equal(0, none.Accesses);
        Assert.Equal(0, none.Latency.TotalCount);

        // A deadline beyond the clock's range is no deadline: the count ends the sequence.
        vcpu.Tell(new VcpuRunSequence(RamGpa, 0x1000, 5, AccessOp.Read, DateTime.MaxValue), TestActor);
        Assert.Equal(5, ExpectMsg<VcpuSequenceDone>(TimeSpan.FromSeconds(10)).Accesses);
    }
}
