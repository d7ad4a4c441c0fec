package usagev1

import (
	"fmt"
	"time"
)

// Usage categories (SPEC §4b). Count is in the category's count unit, usage
// in its usage unit (see Units).
const (
	CategoryCalls            = "calls"
	CategoryCallsInbound     = "calls-inbound"
	CategoryCallsOutbound    = "calls-outbound"
	CategoryCallsClient      = "calls-client"
	CategoryCallsSIP         = "calls-sip"
	CategoryCallsNumber      = "calls-number"
	CategorySIPRegistrations = "sip-registrations"
	CategoryAPIRequests      = "api-requests"
	CategoryMessages         = "messages"
	CategoryMessagesInbound  = "messages-inbound"
	CategoryMessagesOutbound = "messages-outbound"
	CategoryRecordings       = "recordings"
	CategoryTwiMLFetches     = "twiml-fetches"
)

// Unit is the count and usage unit of a category.
type Unit struct {
	Count string
	Usage string
}

var units = map[string]Unit{
	CategoryCalls:            {"calls", "minutes"},
	CategoryCallsInbound:     {"calls", "minutes"},
	CategoryCallsOutbound:    {"calls", "minutes"},
	CategoryCallsClient:      {"calls", "minutes"},
	CategoryCallsSIP:         {"calls", "minutes"},
	CategoryCallsNumber:      {"calls", "minutes"},
	CategorySIPRegistrations: {"registrations", "registrations"},
	CategoryAPIRequests:      {"requests", "requests"},
	CategoryMessages:         {"messages", "messages"},
	CategoryMessagesInbound:  {"messages", "messages"},
	CategoryMessagesOutbound: {"messages", "messages"},
	CategoryRecordings:       {"recordings", "minutes"},
	CategoryTwiMLFetches:     {"requests", "requests"},
}

// Categories lists the known categories in a stable order.
func Categories() []string {
	return []string{
		CategoryCalls, CategoryCallsInbound, CategoryCallsOutbound, CategoryCallsClient, CategoryCallsSIP, CategoryCallsNumber,
		CategorySIPRegistrations, CategoryAPIRequests,
		CategoryMessages, CategoryMessagesInbound, CategoryMessagesOutbound,
		CategoryRecordings, CategoryTwiMLFetches,
	}
}

// Units returns the units of a known category.
func Units(category string) (Unit, bool) {
	u, ok := units[category]
	return u, ok
}

// ValidCategory reports whether c is a known category.
func ValidCategory(c string) bool { _, ok := units[c]; return ok }

// Recurring values of a trigger.
const (
	RecurNone    = ""
	RecurDaily   = "daily"
	RecurMonthly = "monthly"
	RecurYearly  = "yearly"
	RecurAllTime = "alltime"
)

// TriggerBy values.
const (
	ByCount = "count"
	ByUsage = "usage"
)

// Trigger actions beyond the callback.
const (
	ActionNone           = ""
	ActionSuspendAccount = "suspend-account"
	ActionLimitAdmission = "limit-admission"
)

// Period kinds of the counters.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
	PeriodYear  = "year"
	PeriodAll   = "all"
)

// Periods lists the counter periods in a stable order.
func Periods() []string { return []string{PeriodDay, PeriodMonth, PeriodYear, PeriodAll} }

// PeriodOf maps a trigger's Recurring value to the counter period it watches.
func PeriodOf(recurring string) (string, error) {
	switch recurring {
	case RecurDaily:
		return PeriodDay, nil
	case RecurMonthly:
		return PeriodMonth, nil
	case RecurYearly:
		return PeriodYear, nil
	case RecurAllTime, RecurNone:
		return PeriodAll, nil
	}
	return "", fmt.Errorf("recurring %q: want daily, monthly, yearly, alltime or empty", recurring)
}

// PeriodStart returns the start of the period containing t (UTC).
func PeriodStart(period string, t time.Time) time.Time {
	t = t.UTC()
	switch period {
	case PeriodDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case PeriodMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case PeriodYear:
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.UnixMilli(0).UTC()
}

// PeriodEnd returns the (exclusive) end of the period starting at start; the
// all-time period has no end (zero time).
func PeriodEnd(period string, start time.Time) time.Time {
	switch period {
	case PeriodDay:
		return start.AddDate(0, 0, 1)
	case PeriodMonth:
		return start.AddDate(0, 1, 0)
	case PeriodYear:
		return start.AddDate(1, 0, 0)
	}
	return time.Time{}
}
