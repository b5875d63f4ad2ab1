package redisstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"
)

// createGroup creates the group, and its stream if need be; a group that is
// there already is no error.
func (s *Subscriber) createGroup(ctx context.Context, stream, start string) error {
	err := s.client.XGroupCreateMkStream(ctx, stream, s.cfg.ConsumerGroup, start).Err()
	if err == nil || redis.HasErrorPrefix(err, "BUSYGROUP") {
		return nil
	}
	return fmt.Errorf("redisstream: create group %q on %q: %w", s.cfg.ConsumerGroup, stream, err)
}

// watchGroup checks every second (or DepthInterval, if shorter) that the
// consumer group is there, and creates it again if not: the reader notices
// a missing group only when it reads, and it does not while the handlers
// hold its limit of entries.
func (sub *subscription) watchGroup() {
	s := sub.s
	every(sub.ctx, min(time.Second, s.cfg.DepthInterval), func() {
		gen := sub.groupGen()
		sub.mu.Lock()
		read := sub.lastRead // read before the check: the group had delivered it
		sub.mu.Unlock()
		ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
		groups, err := s.client.XInfoGroups(ctx, sub.stream).Result()
		cancel()
		if err != nil && !redis.HasErrorPrefix(err, "no such key") {
			return // the reader reports what fails
		}
		found := false
		for _, g := range groups {
			if g.Name == s.cfg.ConsumerGroup {
				found = true
				sub.sawGroup(gen, g, read)
			}
		}
		if !found {
			if err := sub.groupMissing(gen, errors.New("consumer group missing")); err != nil && sub.ctx.Err() == nil {
				s.logger.Debug("Cannot create consumer group", watermill.LogFields{"stream": sub.stream, "err": err.Error()})
			}
		}
	})
}

func (sub *subscription) groupGen() uint64 {
	sub.gmu.Lock()
	defer sub.gmu.Unlock()
	return sub.gen
}

// sawGroup records the group as found by a check begun at generation gen,
// and tells if the stream went back since the last check: the group's last
// delivered entry is older than one read before the check, or the stream's
// entries-added (entries-read + lag, which only grows) fell.
func (sub *subscription) sawGroup(gen uint64, g redis.XInfoGroup, read string) {
	s := sub.s
	sub.gmu.Lock()
	defer sub.gmu.Unlock()
	sub.hadGroup = true
	if gen != sub.gen {
		return // found missing and created again meanwhile: already told
	}
	added := int64(-1)
	// An unknown entries-read (nil) reads as 0.
	if g.Lag >= 0 && g.EntriesRead > 0 {
		added = g.EntriesRead + g.Lag
	}
	behind := read != "" && compareIDs(g.LastDeliveredID, read) < 0
	if behind || (added >= 0 && sub.added >= 0 && added < sub.added) {
		s.metrics.resets.WithLabelValues(sub.stream).Inc()
		fields := watermill.LogFields{"stream": sub.stream, "group": s.cfg.ConsumerGroup,
			"last_delivered_id": g.LastDeliveredID, "last_read_id": read,
			"entries_added_before": sub.added, "entries_added_now": added}
		if sub.lag >= 0 {
			fields["undelivered_when_last_checked"] = sub.lag
		}
		s.logger.Error("Stream reset: the stream went back, so Redis restarted or failed over without its latest "+
			"writes (an RDB snapshot, an AOF not fsynced on every write, a replica that lagged), or the group was "+
			"moved back by hand. Entries written since that point and not delivered to the group were lost and are "+
			"not delivered. Run Redis with appendonly yes and appendfsync always to keep them.", nil, fields)
		sub.mu.Lock()
		if sub.lastRead == read {
			sub.lastRead = ""
		}
		sub.mu.Unlock()
	}
	sub.lastSeen, sub.lag, sub.added = g.LastDeliveredID, g.Lag, added
}

// groupMissing creates the group again at "0" after a call begun at
// generation gen found it missing (cause), then tells what vanished with
// it, once: the reader and watchGroup may both notice it.
func (sub *subscription) groupMissing(gen uint64, cause error) error {
	s := sub.s
	sub.gmu.Lock()
	defer sub.gmu.Unlock()
	ctx, cancel := context.WithTimeout(sub.ctx, callTimeout)
	defer cancel()
	if err := s.createGroup(ctx, sub.stream, "0"); err != nil {
		return err
	}
	if gen != sub.gen {
		return nil // already told
	}
	sub.gen++
	fields := watermill.LogFields{"stream": sub.stream, "group": s.cfg.ConsumerGroup}
	if !sub.hadGroup {
		// Subscribe could not create it (Redis was down): nothing vanished.
		sub.hadGroup = true
		s.logger.Info("Consumer group created", fields)
		return nil
	}
	s.metrics.recreated.WithLabelValues(sub.stream).Inc()
	// The newest entry known to have been in the stream: the trimmer keeps
	// it, so if it is gone, the stream's data went with the group.
	sub.mu.Lock()
	mark := sub.lastRead
	sub.lastRead = ""
	sub.mu.Unlock()
	if sub.lastSeen != "" && sub.lastSeen != "0-0" && (mark == "" || compareIDs(sub.lastSeen, mark) > 0) {
		mark = sub.lastSeen
	}
	lost := false
	if mark != "" {
		kept, err := s.client.XRangeN(ctx, sub.stream, mark, mark, 1).Result()
		lost = err == nil && len(kept) == 0
	}
	lag := sub.lag
	sub.lastSeen, sub.lag, sub.added = "", -1, -1
	switch {
	case mark == "":
		s.logger.Error("Consumer group was missing; created it again at 0 (entries may have been lost with it)", cause, fields)
		return nil
	case !lost:
		s.logger.Error("Consumer group was missing, its stream kept; created it again at 0: the stream's entries are delivered again", cause, fields)
		return nil
	}
	s.metrics.resets.WithLabelValues(sub.stream).Inc()
	fields["last_read_id"] = mark
	if lag >= 0 {
		fields["undelivered_when_last_checked"] = lag
	}
	s.logger.Error("Stream reset: the consumer group vanished with the entries it had read, so Redis restarted or "+
		"failed over without its data, or the stream was deleted. The entries Redis had not delivered to the group "+
		"were lost with it (undelivered_when_last_checked tells about how many) and are not delivered. Run Redis "+
		"with appendonly yes to keep them across restarts. The group was created again at 0.", cause, fields)
	return nil
}
