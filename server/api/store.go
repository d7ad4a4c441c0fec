package api

import (
	"context"

	"github.com/parleyhq/parley/store"
)

// Store is the durable data the REST API reads and writes. The API owns
// this interface, in the store's record types; *store.Store (SQLite)
// implements it, and another engine can implement the same methods beside
// it without touching the API.
type Store interface {
	AccountStore
	KeyStore
	ApplicationStore
	CallStore
	NumberStore
	MessageStore
	SIPStore
}

// AccountStore is the accounts part of Store.
type AccountStore interface {
	Account(ctx context.Context, accountSid string) (store.Account, error)
	CreateAccount(ctx context.Context, in store.NewAccount) (store.Account, error)
	ListAccounts(ctx context.Context, f store.AccountFilter, p store.Page) ([]store.Account, bool, error)
	UpdateAccount(ctx context.Context, accountSid string, u store.AccountUpdate) (store.Account, error)
}

// KeyStore is the API keys part of Store.
type KeyStore interface {
	Key(ctx context.Context, keySid string) (store.APIKey, error)
	CreateKey(ctx context.Context, accountSid, friendlyName string) (store.APIKey, error)
	ListKeys(ctx context.Context, accountSid string, p store.Page) ([]store.APIKey, bool, error)
	RenameKey(ctx context.Context, keySid, friendlyName string) (store.APIKey, error)
	RevokeKey(ctx context.Context, keySid string) error
}

// ApplicationStore is the applications part of Store.
type ApplicationStore interface {
	Application(ctx context.Context, appSid string) (store.Application, error)
	CreateApplication(ctx context.Context, a store.Application) (store.Application, error)
	ListApplications(ctx context.Context, accountSid, friendlyName string, p store.Page) ([]store.Application, bool, error)
	UpdateApplication(ctx context.Context, a store.Application) (store.Application, error)
	DeleteApplication(ctx context.Context, appSid string) error
}

// CallStore is the call and recording records part of Store.
type CallStore interface {
	Call(ctx context.Context, callSid string) (store.CallRecord, error)
	ListCalls(ctx context.Context, accountSid string, f store.CallFilter, p store.Page) ([]store.CallRecord, bool, error)
	Recording(ctx context.Context, recSid string) (store.RecordingRecord, error)
	ListRecordings(ctx context.Context, accountSid, callSid string, p store.Page) ([]store.RecordingRecord, bool, error)
}

// NumberStore is the incoming numbers part of Store.
type NumberStore interface {
	IncomingNumber(ctx context.Context, numberSid string) (store.IncomingNumber, error)
	CreateIncomingNumber(ctx context.Context, n store.IncomingNumber) (store.IncomingNumber, error)
	ListIncomingNumbers(ctx context.Context, accountSid, number string, p store.Page) ([]store.IncomingNumber, bool, error)
	UpdateIncomingNumber(ctx context.Context, n store.IncomingNumber) (store.IncomingNumber, error)
	DeleteIncomingNumber(ctx context.Context, numberSid string) error
}

// MessageStore is the messages part of Store.
type MessageStore interface {
	Message(ctx context.Context, messageSid string) (store.Message, error)
	ListMessages(ctx context.Context, accountSid string, f store.MessageFilter, p store.Page) ([]store.Message, bool, error)
}

// SIPStore is the SIP domains, credential lists and credentials part of Store.
type SIPStore interface {
	SIPDomain(ctx context.Context, accountSid, domainSid string) (store.SIPDomain, error)
	CreateSIPDomain(ctx context.Context, accountSid string, in store.NewSIPDomain) (store.SIPDomain, error)
	ListSIPDomains(ctx context.Context, accountSid string, p store.Page) ([]store.SIPDomain, bool, error)
	UpdateSIPDomain(ctx context.Context, accountSid, domainSid string, u store.SIPDomainUpdate) (store.SIPDomain, error)
	DeleteSIPDomain(ctx context.Context, accountSid, domainSid string) error
	ListSIPDomainCredentialLists(ctx context.Context, accountSid, domainSid string, p store.Page) ([]store.SIPCredentialList, bool, error)
	MapSIPCredentialList(ctx context.Context, accountSid, domainSid, listSid string) error
	UnmapSIPCredentialList(ctx context.Context, accountSid, domainSid, listSid string) error
	SIPCredentialList(ctx context.Context, accountSid, listSid string) (store.SIPCredentialList, error)
	CreateSIPCredentialList(ctx context.Context, accountSid, friendlyName string) (store.SIPCredentialList, error)
	ListSIPCredentialLists(ctx context.Context, accountSid string, p store.Page) ([]store.SIPCredentialList, bool, error)
	DeleteSIPCredentialList(ctx context.Context, accountSid, listSid string) error
	CreateSIPCredential(ctx context.Context, accountSid, listSid, username, password, realm string) (store.SIPCredential, error)
	ListSIPCredentials(ctx context.Context, accountSid, listSid string, p store.Page) ([]store.SIPCredential, bool, error)
	SIPCredentialInList(ctx context.Context, accountSid, listSid, credentialSid string) (bool, error)
	DeleteSIPCredential(ctx context.Context, accountSid, credentialSid string) error
}

var _ Store = (*store.Store)(nil)
