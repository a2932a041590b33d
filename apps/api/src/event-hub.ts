import type { RedisClient } from '@askq/shared';
import { decodePublished, type Keys, type LoggedEvent, type Logger } from '@askq/shared';

/** Receives a question's live events. */
export interface EventListener {
  /** The events published since the last call, in order (several when they came in a burst). */
  onEvents(events: LoggedEvent[]): void;
  /** The subscriber reconnected: events may have been missed, re-read the log. */
  onResync(): void;
}

/** Fans out published events to the streams of this process over one Redis subscriber. */
export interface EventHub {
  /** Resolves once Redis confirmed the subscription, so no event published after it is missed. */
  subscribe(questionId: string, listener: EventListener): Promise<() => void>;
}

interface Channel {
  listeners: Set<EventListener>;
  ready: Promise<unknown>;
}

/**
 * One subscriber connection per API process rather than one per client: channels are subscribed
 * while at least one stream watches them and released after the last one leaves.
 */
export function createEventHub(subscriber: RedisClient, keys: Keys, log: Logger): EventHub {
  const channels = new Map<string, Channel>();
  let connectedOnce = false;

  // Messages that arrive together (one socket read) are handed over together at the end of the
  // tick, so a stream writes a burst of events in one write.
  let pending = new Map<Channel, LoggedEvent[]>();
  const dispatch = () => {
    const batches = pending;
    pending = new Map();
    for (const [channel, events] of batches) {
      for (const listener of channel.listeners) listener.onEvents(events);
    }
  };
  // Sharded pub/sub (Redis 7): on a cluster a question's events stay on its shard.
  subscriber.on('smessage', (channelName: string, message: string) => {
    const channel = channels.get(channelName);
    const event = channel && decodePublished(message);
    if (!channel || !event) return;
    if (pending.size === 0) queueMicrotask(dispatch);
    const batch = pending.get(channel);
    if (batch) batch.push(event);
    else pending.set(channel, [event]);
  });

  const resyncAll = () => {
    for (const channel of channels.values()) {
      for (const listener of channel.listeners) listener.onResync();
    }
  };
  // On a cluster, ioredis moves the subscription to another node when its node leaves, without
  // a 'ready' of its own: re-read then, and the streams' heartbeats catch what comes after.
  subscriber.on('-node', () => {
    log.warn({ channels: channels.size }, 'a Redis Cluster node left; resyncing streams');
    resyncAll();
  });

  subscriber.on('ready', () => {
    // ioredis re-subscribes by itself, but anything published while it was away is gone.
    if (connectedOnce) {
      log.warn({ channels: channels.size }, 'event subscriber reconnected; resyncing streams');
      resyncAll();
    }
    connectedOnce = true;
  });

  return {
    async subscribe(questionId, listener) {
      const name = keys.eventsChannel(questionId);
      let channel = channels.get(name);
      if (!channel) {
        channel = { listeners: new Set(), ready: subscriber.ssubscribe(name) };
        channels.set(name, channel);
      }
      channel.listeners.add(listener);
      const current = channel;
      const release = () => {
        current.listeners.delete(listener);
        if (current.listeners.size === 0 && channels.get(name) === current) {
          channels.delete(name);
          // Commands on one connection run in order, so a later SUBSCRIBE still wins.
          subscriber.sunsubscribe(name).catch((e: unknown) => {
            log.debug({ err: e, channel: name }, 'unsubscribe failed');
          });
        }
      };
      try {
        await current.ready;
      } catch (e) {
        release();
        throw e;
      }
      return release;
    },
  };
}
