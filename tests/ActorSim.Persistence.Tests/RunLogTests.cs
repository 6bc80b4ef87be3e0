using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.Serialization;
using Akka.Actor;
using Akka.Persistence;

namespace ActorSim.Persistence.Tests;

/// <summary>A run read back from the database: only its own streams' domain events, in global order
/// (numbered from 1), with other runs' events before, between and after them.</summary>
public sealed class RunLogTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    private void Write(string pid, long seq, object payload)
    {
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent(payload, seq, pid, "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ExpectMsg<WriteMessageSuccess>();
    }

    [Fact]
    public async Task A_run_reads_back_its_own_domain_events_in_global_order()
    {
        var e = EventSerializationTests.SampleEvents();
        Write("other/kvm-vm1", 1, e[0]);
        Write("rl/kvm-vm1", 1, e[1]);
        Write("rl2/kvm-vm1", 1, e[2]); // a run whose name starts like this one's
        Write("rl/mm", 1, e[3]);
        Write("rl/notes", 1, "not a domain event"); // an Akka-serialized payload: not part of the run's log
        Write("other/kvm-vm1", 2, e[4]);
        Write("rl/kvm-vm1", 2, e[^1]);
        Write("other/kvm-vm1", 3, e[5]);

        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        var events = new List<RunEvent>();
        await foreach (var ev in RunLog.ReadAsync(store, "rl")) events.Add(ev);
        Assert.Equal([(1L, "kvm-vm1", 1L), (2L, "mm", 1L), (3L, "kvm-vm1", 2L)], events.Select(x => (x.Seq, x.Stream, x.Version)));
        Assert.Equal(new[] { e[1], e[3], e[^1] }.Select(x => DomainEventSerializer.ToJson(x).GetRawText()), events.Select(x => DomainEventSerializer.ToJson(x.Event).GetRawText()));
        Assert.All(events, x => Assert.True(x.TimestampTicks > 0));

        var none = new List<RunEvent>();
        await foreach (var ev in RunLog.ReadAsync(store, "no-such-run")) none.Add(ev);
        Assert.Empty(none);
    }
}
