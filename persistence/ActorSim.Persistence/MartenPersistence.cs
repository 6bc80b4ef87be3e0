using Akka.Configuration;

namespace ActorSim.Persistence;

/// <summary>HOCON for the Marten journal and snapshot store, plugin ids
/// <c>akka.persistence.journal.marten</c> and <c>akka.persistence.snapshot-store.marten</c>, made the
/// defaults. The connection string is taken from <paramref name="connectionString"/>, else from
/// ACTORSIM_DB when the plugin starts.</summary>
public static class MartenPersistence
{
    public const string JournalPluginId = "akka.persistence.journal.marten";
    public const string SnapshotPluginId = "akka.persistence.snapshot-store.marten";

    public static Config Config(string? connectionString = null, string schema = MartenStores.DefaultSchema, int maxEventsPerCommit = 1000, string? dataSource = null,
        TimeSpan? outageLimit = null)
    {
        var cs = Quote(connectionString);
        var ds = Quote(dataSource);
        var limit = outageLimit ?? Journal.Outages.DefaultLimit;
        // Whatever may wait out an outage — a write, a recovery's reads, a snapshot's load — must not be
        // timed out by Akka first: the circuit breakers' call-timeout and a recovery's
        // recovery-event-timeout (30 s by default, for the snapshot's load as for each replayed event)
        // are the limit and a minute more.
        var patience = (long)(limit + TimeSpan.FromSeconds(60)).TotalMilliseconds;
        return ConfigurationFactory.ParseString($$"""
            akka.persistence.journal.plugin = "{{JournalPluginId}}"
            akka.persistence.snapshot-store.plugin = "{{SnapshotPluginId}}"
            akka.persistence.journal.marten {
              class = "ActorSim.Persistence.Journal.MartenJournal, ActorSim.Persistence"
              plugin-dispatcher = "akka.actor.default-dispatcher"
              connection-string = "{{cs}}"
              data-source = "{{ds}}"
              schema = "{{schema}}"
              max-events-per-commit = {{maxEventsPerCommit}}
              outage-limit = {{(long)limit.TotalMilliseconds}}ms
              recovery-event-timeout = {{patience}}ms
              circuit-breaker {
                max-failures = 10
                call-timeout = {{patience}}ms
                reset-timeout = 30s
              }
            }
            akka.persistence.query.journal.marten {
              class = "ActorSim.Persistence.Query.MartenReadJournalProvider, ActorSim.Persistence"
              connection-string = "{{cs}}"
              data-source = "{{ds}}"
              schema = "{{schema}}"
              refresh-interval = 100ms
              page-size = 1000
            }
            akka.persistence.snapshot-store.marten {
              class = "ActorSim.Persistence.Journal.MartenSnapshotStore, ActorSim.Persistence"
              plugin-dispatcher = "akka.actor.default-dispatcher"
              connection-string = "{{cs}}"
              data-source = "{{ds}}"
              schema = "{{schema}}"
              outage-limit = {{(long)limit.TotalMilliseconds}}ms
              circuit-breaker {
                max-failures = 5
                call-timeout = {{patience}}ms
                reset-timeout = 60s
              }
            }
            """).WithFallback(SerializerConfig);
    }

    /// <summary>The domain's Akka serializer for events and decider states, for any journal.</summary>
    public static Config SerializerConfig { get; } = ConfigurationFactory.ParseString("""
        akka.actor.serializers.actorsim-domain = "ActorSim.Persistence.Serialization.AkkaDomainSerializer, ActorSim.Persistence"
        akka.actor.serialization-bindings {
          "ActorSim.Domain.IDomainEvent, ActorSim.Domain" = actorsim-domain
          "ActorSim.Domain.Mm.AddressSpace, ActorSim.Domain" = actorsim-domain
          "ActorSim.Domain.Vfio.VfioDevice, ActorSim.Domain" = actorsim-domain
          "ActorSim.Domain.Kvm.KvmVm, ActorSim.Domain" = actorsim-domain
        }
        """);

    private static string Quote(string? s) => (s ?? "").Replace("\\", "\\\\").Replace("\"", "\\\"");
}
