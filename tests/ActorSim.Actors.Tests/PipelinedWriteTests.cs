using System.Collections.Immutable;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.Journal;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>The in-memory journal with a gate: while it is closed, writes wait (a slow commit).</summary>
public sealed class GatedJournal : MemoryJournal
{
    private static volatile TaskCompletionSource? _gate;
    private static readonly List<(string PersistenceId, object[] Events)> Arrivals = [];

    /// <summary>The writes that reached the journal since the last <see cref="Close"/>, in arrival order.</summary>
    public static (string PersistenceId, object[] Events)[] Arrived()
    {
        lock (Arrivals) return [.. Arrivals];
    }

    public static Config Config => ConfigurationFactory.ParseString("""
        akka.persistence.journal.plugin = "akka.persistence.journal.gated"
        akka.persistence.journal.gated {
          class = "ActorSim.Actors.Tests.GatedJournal, ActorSim.Actors.Tests"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """);

    /// <summary>Closes the gate; writes from now on wait until the returned source is set.</summary>
    public static TaskCompletionSource Close()
    {
        lock (Arrivals) Arrivals.Clear();
        return _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    protected override async Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToArray();
        lock (Arrivals)
            foreach (var w in writes)
                Arrivals.Add((w.PersistenceId, [.. ((IEnumerable<IPersistentRepresentation>)w.Payload).Select(p => p.Payload)]));
        if (_gate is { } gate) await gate.Task.ConfigureAwait(false);
        return await base.WriteMessagesAsync(writes, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The KvmActor writes its decisions pipelined (DeciderActor.PersistPipelined): its state moves
/// on at once, but nothing that waits for a decision hears of it before it is durable; and no VM's
/// decision reaches the journal before the mm's PTEs it used.</summary>
public class PipelinedWriteTests() : Akka.TestKit.Xunit2.TestKit(GatedJournal.Config.WithFallback(SimHost.BaseConfig(false)))
{
    private const ulong RamGpa = 0x4000_0000UL;

    [Fact]
    public async Task A_vCPU_goes_on_and_a_state_query_answers_only_once_the_decision_is_durable()
    {
        var h = await SimHost.StartAsync(Sys, "gated", Policy("6.9"), [], [KvmVm.Create("vm1")], new SimHostOptions());
        var ram = await h.Ask<MmResult>(h.Mm, new MmMapRam(16 * MiB, null));
        await h.Ask<KvmResult>(h.Vm("vm1"), new KvmSetMemslot(0, MemslotFlags.None, RamGpa, 16 * MiB, ram.Hva));
        var published = CreateTestProbe();
        Sys.EventStream.Subscribe(published, typeof(DomainEventPublished));

        var gate = GatedJournal.Close();
        h.Vcpu("vm1", 0).Tell(new VcpuRunAccess(RamGpa, AccessOp.Read), TestActor);
        // The mm answered and the VM decided while the mm's PTE write was still waiting at the gate.
        published.FishForMessage<DomainEventPublished>(p => p.Event is Stage2FaultResolved or Stage2FaultsResolved, TimeSpan.FromSeconds(5));
        h.Vm("vm1").Tell(new KvmGetState(), TestActor);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // neither the vCPU nor the state query hears of it yet

        gate.SetResult();
        var answers = ReceiveN(2, TimeSpan.FromSeconds(5));
        var done = Assert.Single(answers.OfType<VcpuAccessDone>());
        Assert.Equal(FaultResult.Mapped, done.Result.Outcome.Result);
        Assert.NotNull(Assert.Single(answers.OfType<KvmVm>()).Stage2.Lookup(RamGpa));
    }

    [Fact]
    public async Task A_VMs_decisions_never_reach_the_journal_before_the_PTEs_they_used()
    {
        var h = await SimHost.StartAsync(Sys, "gated-order", Policy("6.9"), [], [KvmVm.Create("vm1"), KvmVm.Create("vm2")], new SimHostOptions());
        foreach (var vm in new[] { "vm1", "vm2" })
        {
            var ram = await h.Ask<MmResult>(h.Mm, new MmMapRam(16 * MiB, null));
            await h.Ask<KvmResult>(h.Vm(vm), new KvmSetMemslot(0, MemslotFlags.None, RamGpa, 16 * MiB, ram.Hva));
        }
        var published = CreateTestProbe();
        Sys.EventStream.Subscribe(published, typeof(DomainEventPublished));

        var gate = GatedJournal.Close();
        // vm1's fault: the mm's first PTE write is now in flight (held at the gate).
        h.Vcpu("vm1", 0).Tell(new VcpuRunAccess(RamGpa, AccessOp.Read), TestActor);
        published.FishForMessage<DomainEventPublished>(p => p.Stream.EndsWith("kvm-vm1") && p.Event is Stage2FaultResolved, TimeSpan.FromSeconds(5));
        // vm2's fault needs a second pass and a second PTE write while the first is in flight. A
        // persistent actor has one journal write in flight, so Akka would hold that second write: an
        // mm that answered vm2 at once (tried, to pipeline its writes) let vm2's decision reach the
        // journal first, and a crash in between left a leaf without its PTE.
        h.Vcpu("vm2", 0).Tell(new VcpuRunAccess(RamGpa, AccessOp.Read), TestActor);
        await Task.Delay(300);
        gate.SetResult();
        ReceiveN(2, TimeSpan.FromSeconds(5));

        var arrived = GatedJournal.Arrived();
        var ptes = arrived.Select((w, i) => (w, i)).Where(x => x.w.PersistenceId.EndsWith("mm-vmm") && x.w.Events.Any(e => e is UserPtesPopulated or UserPtesPopulatedBatch)).Select(x => x.i).ToArray();
        var vm2Decision = Array.FindIndex(arrived, w => w.PersistenceId.EndsWith("kvm-vm2") && w.Events.Any(e => e is Stage2FaultResolved or Stage2FaultsResolved));
        Assert.Equal(2, ptes.Length);
        Assert.True(vm2Decision > ptes[1], $"vm2's decision reached the journal as write {vm2Decision}, before the PTEs it used (write {ptes[1]})");
    }
}
