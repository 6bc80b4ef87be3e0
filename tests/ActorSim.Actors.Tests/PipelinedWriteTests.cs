using System.Collections.Immutable;
using ActorSim.Domain.Kvm;
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

    public static Config Config => ConfigurationFactory.ParseString("""
        akka.persistence.journal.plugin = "akka.persistence.journal.gated"
        akka.persistence.journal.gated {
          class = "ActorSim.Actors.Tests.GatedJournal, ActorSim.Actors.Tests"
          plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """);

    /// <summary>Closes the gate; writes from now on wait until the returned source is set.</summary>
    public static TaskCompletionSource Close() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToArray();
        if (_gate is { } gate) await gate.Task.ConfigureAwait(false);
        return await base.WriteMessagesAsync(writes, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The mm and the KvmActor write their fault-path events pipelined (DeciderActor.PersistPipelined):
/// they decide from the new state at once, but nothing that waits for a decision hears of it before it
/// is durable.</summary>
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
}
