using System.Text.Json;
using ActorSim.Domain.Kvm;
using ActorSim.Persistence.EventLog;
using ActorSim.Persistence.Journal;
using ActorSim.Persistence.ReadSide;
using ActorSim.Persistence.Serialization;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using ActorSim.Persistence.Query;
using Npgsql;

namespace ActorSim.Persistence.Tests;

/// <summary>A large domain event (a batch of decision records) is stored packed — a zlib-compressed,
/// base64 JSON string in the entry's <c>Data</c> — and every reader gives back the same event: the
/// journal's replay, the read journal, <see cref="RunLog"/>, and the projection.</summary>
public sealed class PackedEventTests(SchemaFixture schema) : Akka.TestKit.Xunit2.TestKit(PostgresSchema.AkkaConfig(schema.Name)), IClassFixture<SchemaFixture>
{
    /// <summary>A batch of 24 decisions (the sample batch's repeated, each a different page), well past
    /// <see cref="EventData.PackAbove"/>.</summary>
    public static Stage2FaultsResolved LargeBatch()
    {
        var sample = EventSerializationTests.SampleEvents().OfType<Stage2FaultsResolved>().Single().Decisions;
        return new Stage2FaultsResolved([.. Enumerable.Range(0, 24).Select(i =>
        {
            var d = sample[i % sample.Length];
            return d with { Inputs = d.Inputs with { Gpa = d.Inputs.Gpa + ((ulong)i << 12), Vcpu = i } };
        })]);
    }

    private static string Json(Domain.IDomainEvent e) => DomainEventSerializer.ToJson(e).GetRawText();

    [Fact]
    public void A_large_event_is_written_as_a_packed_string_and_read_back_whole_a_small_one_stays_an_object()
    {
        var large = DomainEventSerializer.ToUtf8(LargeBatch());
        var small = DomainEventSerializer.ToUtf8(EventSerializationTests.SampleEvents()[0]);
        Assert.True(large.Length > EventData.PackAbove && small.Length <= EventData.PackAbove, $"{large.Length} / {small.Length}");

        var packed = JsonSerializer.SerializeToUtf8Bytes(new JournalEntry { Type = "stage2_faults_resolved", Data = new EventData(large) });
        var stored = JsonDocument.Parse(packed).RootElement.GetProperty("Data");
        Assert.Equal(JsonValueKind.String, stored.ValueKind);
        Assert.True(stored.GetString()!.Length < large.Length / 4, $"{stored.GetString()!.Length} of {large.Length}");
        var back = JsonSerializer.Deserialize<JournalEntry>(packed)!.Data!;
        Assert.True(back.Packed);
        Assert.Equal(System.Text.Encoding.UTF8.GetString(large), back.Element.GetRawText());
        Assert.Equal(large, EventData.Utf8Of(System.Text.Encoding.UTF8.GetBytes(stored.GetRawText())));

        var plain = JsonSerializer.SerializeToUtf8Bytes(new JournalEntry { Type = "x", Data = new EventData(small) });
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(plain).RootElement.GetProperty("Data").ValueKind);
        Assert.False(JsonSerializer.Deserialize<JournalEntry>(plain)!.Data!.Packed);
        Assert.Equal(small, EventData.Utf8Of(small));
    }

    [Fact]
    public async Task A_packed_batch_reads_back_the_same_from_every_reader()
    {
        var batch = LargeBatch();
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        journal.Tell(new WriteMessages([new AtomicWrite(new Persistent(batch, 1, "pk/kvm-vm1", "", false, ActorRefs.NoSender, "w"))], TestActor, 1));
        ExpectMsg<WriteMessagesSuccessful>(TimeSpan.FromSeconds(20));
        ExpectMsg<WriteMessageSuccess>();

        await using (var conn = new NpgsqlConnection(PostgresSchema.ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"select jsonb_typeof(data->'Data') from {schema.Name}.mt_events where stream_id = 'pk/kvm-vm1'", conn);
            Assert.Equal("string", await cmd.ExecuteScalarAsync());
        }

        // The journal's replay (actor recovery).
        journal.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, "pk/kvm-vm1", TestActor));
        var replayed = ExpectMsg<ReplayedMessage>(TimeSpan.FromSeconds(20)).Persistent.Payload;
        ExpectMsg<RecoverySuccess>();
        Assert.Equal(Json(batch), Json((Domain.IDomainEvent)replayed));

        // The read journal (Akka.Persistence.Query).
        var query = PersistenceQuery.Get(Sys).ReadJournalFor<MartenReadJournal>(MartenReadJournal.Identifier);
        var envelopes = await query.CurrentEventsByPersistenceId("pk/kvm-vm1", 0, long.MaxValue).RunWith(Sink.Seq<EventEnvelope>(), Sys.Materializer());
        Assert.Equal([Json(batch)], envelopes.Select(e => Json((Domain.IDomainEvent)e.Event)));

        // The run's log (replay, export, explain) and the projection's rows.
        var store = MartenStores.Get(PostgresSchema.ConnectionString, schema.Name);
        var read = new List<RunEvent>();
        await foreach (var e in RunLog.ReadAsync(store, "pk")) read.Add(e);
        Assert.Equal([Json(batch)], read.Select(e => Json(e.Event)));
        await using var session = store.QuerySession();
        Assert.Equal(batch.Decisions.Select(d => (long)d.Inputs.Gpa), (await DecisionRows.ForRunAsync(session, "pk")).Select(r => r.Gpa));
    }
}
